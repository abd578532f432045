-- Two-way example (docs/TWO-WAY.md), MariaDB side: the business table
-- with its _provenance column and the triggers that rank direct edits.
--   mariadb -uroot -p... < mappings/examples/twoway-setup-mariadb.sql
-- Rank of a direct edit under rule `latest` (docs/MAPPINGS.md):
--   '8' || 15 hex digits of t (µs) || priority ^ 0x80000000 (8 hex)
--   || FNV-1a hash of the source id (8 hex) || 32 zeros
-- crm: priority 1 -> 80000001, fnv('crm') = ed44d677.
-- t is the statement time, but at least the stored time + 1 µs, so an
-- edit always ranks above the value it replaces.  Our sinks' sessions
-- set @autoglm_cdc_sink = 1: their writes carry their own ranks.
CREATE DATABASE IF NOT EXISTS crm2w;
USE crm2w;
CREATE TABLE IF NOT EXISTS customers (
    id BIGINT PRIMARY KEY,
    name TEXT,
    email TEXT,
    is_active BIGINT,
    _provenance LONGTEXT NOT NULL DEFAULT '{}'
) CHARSET utf8mb4;

DROP TRIGGER IF EXISTS customers_2w_ins;
DROP TRIGGER IF EXISTS customers_2w_upd;
DELIMITER //
CREATE TRIGGER customers_2w_ins BEFORE INSERT ON customers FOR EACH ROW
BEGIN
    DECLARE t BIGINT;
    IF COALESCE(@autoglm_cdc_sink, 0) = 0 THEN
        SET t = CAST(UNIX_TIMESTAMP(NOW(6)) * 1000000 AS SIGNED);
        IF NEW.name IS NOT NULL THEN
            SET NEW._provenance = JSON_SET(NEW._provenance, '$.name',
                JSON_OBJECT('s', 'crm', 't', t, 'r', CONCAT('8', LPAD(LOWER(HEX(t)), 15, '0'),
                            '80000001', 'ed44d677', REPEAT('0', 32))));
        END IF;
        IF NEW.is_active IS NOT NULL THEN
            SET NEW._provenance = JSON_SET(NEW._provenance, '$.is_active',
                JSON_OBJECT('s', 'crm', 't', t, 'r', CONCAT('8', LPAD(LOWER(HEX(t)), 15, '0'),
                            '80000001', 'ed44d677', REPEAT('0', 32))));
        END IF;
    END IF;
END//
CREATE TRIGGER customers_2w_upd BEFORE UPDATE ON customers FOR EACH ROW
BEGIN
    DECLARE t BIGINT;
    IF COALESCE(@autoglm_cdc_sink, 0) = 0 THEN
        IF NOT (NEW.name <=> OLD.name) THEN
            SET t = GREATEST(CAST(UNIX_TIMESTAMP(NOW(6)) * 1000000 AS SIGNED),
                             COALESCE(CAST(JSON_VALUE(OLD._provenance, '$.name.t') AS SIGNED), 0) + 1);
            SET NEW._provenance = JSON_SET(NEW._provenance, '$.name',
                JSON_OBJECT('s', 'crm', 't', t, 'r', CONCAT('8', LPAD(LOWER(HEX(t)), 15, '0'),
                            '80000001', 'ed44d677', REPEAT('0', 32))));
        END IF;
        IF NOT (NEW.is_active <=> OLD.is_active) THEN
            SET t = GREATEST(CAST(UNIX_TIMESTAMP(NOW(6)) * 1000000 AS SIGNED),
                             COALESCE(CAST(JSON_VALUE(OLD._provenance, '$.is_active.t') AS SIGNED), 0) + 1);
            SET NEW._provenance = JSON_SET(NEW._provenance, '$.is_active',
                JSON_OBJECT('s', 'crm', 't', t, 'r', CONCAT('8', LPAD(LOWER(HEX(t)), 15, '0'),
                            '80000001', 'ed44d677', REPEAT('0', 32))));
        END IF;
    END IF;
END//
DELIMITER ;
