-- SPDX-License-Identifier: Apache-2.0
-- Two-way example (docs/TWO-WAY.md), MariaDB side: the business table
-- with its _provenance column and the triggers that rank direct edits.
--   mariadb -uroot -p... < mappings/examples/twoway-setup-mariadb.sql
-- Everything after the table is generated from the mapping file by
--   autoglm-cdc mapping triggers -c mappings/examples/twoway-forward.yaml mysql
-- (tests/unit/t_twoway_sql checks that this file holds exactly that).
CREATE DATABASE IF NOT EXISTS crm2w;
CREATE TABLE IF NOT EXISTS crm2w.customers (
    id BIGINT PRIMARY KEY,
    name TEXT,
    email TEXT,
    is_active BIGINT,
    _provenance LONGTEXT NOT NULL DEFAULT '{}'
) CHARSET utf8mb4;

-- autoglm-cdc mapping triggers: MariaDB/MySQL (run with the mariadb or
-- mysql client; our sinks' sessions set @autoglm_cdc_sink = 1)
-- crm2w.customers: direct edits rank as source crm (priority 1, weight 1)
--   name: rule latest, rank '' || T || 80000001ed44d67700000000000000000000000000000000
--   is_active: rule latest, rank '' || T || 80000001ed44d67700000000000000000000000000000000
ALTER TABLE `crm2w`.`customers` ADD COLUMN IF NOT EXISTS `_provenance` LONGTEXT NOT NULL DEFAULT '{}';
DROP TRIGGER IF EXISTS `crm2w`.`customers_2w_ins`;
DROP TRIGGER IF EXISTS `crm2w`.`customers_2w_upd`;
DROP TRIGGER IF EXISTS `crm2w`.`customers_2w_del`;
CREATE TABLE IF NOT EXISTS `crm2w`.`customers_tombstones` (`id` BIGINT NOT NULL, `_provenance` LONGTEXT NOT NULL, PRIMARY KEY (`id`)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
DELIMITER //
CREATE TRIGGER `crm2w`.`customers_2w_ins` BEFORE INSERT ON `crm2w`.`customers` FOR EACH ROW
BEGIN
    DECLARE t BIGINT;
    DECLARE now_us BIGINT;
    DECLARE r VARCHAR(88);
    DECLARE tp LONGTEXT;
    DECLARE live INT DEFAULT 0;
    IF COALESCE(@autoglm_cdc_sink, 0) = 0 THEN
        SET now_us = CAST(UNIX_TIMESTAMP(NOW(6)) * 1000000 AS SIGNED);
        SET tp = (SELECT `_provenance` FROM `crm2w`.`customers_tombstones` WHERE `id` = NEW.`id` FOR UPDATE);
        IF NEW.`name` IS NOT NULL THEN
            SET t = GREATEST(now_us, COALESCE(CAST(JSON_UNQUOTE(JSON_EXTRACT(tp, '$."name".t')) AS SIGNED), 0) + 1);
            SET r = CONCAT('8', LPAD(LOWER(HEX(t)), 15, '0'), '80000001ed44d67700000000000000000000000000000000');
            IF BINARY r <= BINARY COALESCE(JSON_UNQUOTE(JSON_EXTRACT(tp, '$."name".r')), '') THEN
                SET NEW.`name` = NULL; -- the key's delete ranks higher: undone
            ELSE
                SET NEW.`_provenance` = JSON_SET(COALESCE(NEW.`_provenance`, '{}'), '$."name"',
                    JSON_OBJECT('s', 'crm', 't', t, 'r', r));
                SET live = 1;
            END IF;
        END IF;
        IF NEW.`is_active` IS NOT NULL THEN
            SET t = GREATEST(now_us, COALESCE(CAST(JSON_UNQUOTE(JSON_EXTRACT(tp, '$."is_active".t')) AS SIGNED), 0) + 1);
            SET r = CONCAT('8', LPAD(LOWER(HEX(t)), 15, '0'), '80000001ed44d67700000000000000000000000000000000');
            IF BINARY r <= BINARY COALESCE(JSON_UNQUOTE(JSON_EXTRACT(tp, '$."is_active".r')), '') THEN
                SET NEW.`is_active` = NULL; -- the key's delete ranks higher: undone
            ELSE
                SET NEW.`_provenance` = JSON_SET(COALESCE(NEW.`_provenance`, '{}'), '$."is_active"',
                    JSON_OBJECT('s', 'crm', 't', t, 'r', r));
                SET live = 1;
            END IF;
        END IF;
        IF tp IS NOT NULL THEN
            IF NEW.`name` IS NULL AND JSON_EXTRACT(tp, '$."name"') IS NOT NULL THEN
                SET NEW.`_provenance` = JSON_SET(COALESCE(NEW.`_provenance`, '{}'), '$."name"', JSON_EXTRACT(tp, '$."name"'));
            END IF;
            IF NEW.`is_active` IS NULL AND JSON_EXTRACT(tp, '$."is_active"') IS NOT NULL THEN
                SET NEW.`_provenance` = JSON_SET(COALESCE(NEW.`_provenance`, '{}'), '$."is_active"', JSON_EXTRACT(tp, '$."is_active"'));
            END IF;
            IF live = 0 THEN
                SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'autoglm-cdc: this insert ranks lower than the delete of its key on every field: refused';
            END IF;
            DELETE FROM `crm2w`.`customers_tombstones` WHERE `id` = NEW.`id`;
        END IF;
    END IF;
END//
CREATE TRIGGER `crm2w`.`customers_2w_upd` BEFORE UPDATE ON `crm2w`.`customers` FOR EACH ROW
BEGIN
    DECLARE t BIGINT;
    DECLARE r VARCHAR(88);
    IF COALESCE(@autoglm_cdc_sink, 0) = 0 THEN
        IF NOT (NEW.`name` <=> OLD.`name`) THEN
            SET t = GREATEST(CAST(UNIX_TIMESTAMP(NOW(6)) * 1000000 AS SIGNED),
                COALESCE(CAST(JSON_UNQUOTE(JSON_EXTRACT(OLD.`_provenance`, '$."name".t')) AS SIGNED), 0) + 1);
            SET r = CONCAT('8', LPAD(LOWER(HEX(t)), 15, '0'), '80000001ed44d67700000000000000000000000000000000');
            IF BINARY r <= BINARY COALESCE(JSON_UNQUOTE(JSON_EXTRACT(OLD.`_provenance`, '$."name".r')), '') THEN
                SET NEW.`name` = OLD.`name`; -- this edit ranks lower: undone
            ELSE
                SET NEW.`_provenance` = JSON_SET(COALESCE(NEW.`_provenance`, '{}'), '$."name"',
                    JSON_OBJECT('s', 'crm', 't', t, 'r', r));
            END IF;
        END IF;
        IF NOT (NEW.`is_active` <=> OLD.`is_active`) THEN
            SET t = GREATEST(CAST(UNIX_TIMESTAMP(NOW(6)) * 1000000 AS SIGNED),
                COALESCE(CAST(JSON_UNQUOTE(JSON_EXTRACT(OLD.`_provenance`, '$."is_active".t')) AS SIGNED), 0) + 1);
            SET r = CONCAT('8', LPAD(LOWER(HEX(t)), 15, '0'), '80000001ed44d67700000000000000000000000000000000');
            IF BINARY r <= BINARY COALESCE(JSON_UNQUOTE(JSON_EXTRACT(OLD.`_provenance`, '$."is_active".r')), '') THEN
                SET NEW.`is_active` = OLD.`is_active`; -- this edit ranks lower: undone
            ELSE
                SET NEW.`_provenance` = JSON_SET(COALESCE(NEW.`_provenance`, '{}'), '$."is_active"',
                    JSON_OBJECT('s', 'crm', 't', t, 'r', r));
            END IF;
        END IF;
    END IF;
END//
CREATE TRIGGER `crm2w`.`customers_2w_del` AFTER DELETE ON `crm2w`.`customers` FOR EACH ROW
BEGIN
    DECLARE t BIGINT;
    DECLARE now_us BIGINT;
    DECLARE r VARCHAR(88);
    DECLARE tp LONGTEXT;
    DECLARE p LONGTEXT;
    IF COALESCE(@autoglm_cdc_sink, 0) = 0 THEN
        SET tp = COALESCE((SELECT `_provenance` FROM `crm2w`.`customers_tombstones` WHERE `id` = OLD.`id` FOR UPDATE), '{}');
        SET p = tp;
        SET now_us = CAST(UNIX_TIMESTAMP(NOW(6)) * 1000000 AS SIGNED);
        -- name (rule latest)
        SET t = GREATEST(now_us,
            COALESCE(CAST(JSON_UNQUOTE(JSON_EXTRACT(OLD.`_provenance`, '$."name".t')) AS SIGNED), 0) + 1,
            COALESCE(CAST(JSON_UNQUOTE(JSON_EXTRACT(tp, '$."name".t')) AS SIGNED), 0) + 1);
        SET r = CONCAT('8', LPAD(LOWER(HEX(t)), 15, '0'), '80000001ed44d67700000000000000000000000000000000');
        IF BINARY r > BINARY COALESCE(JSON_UNQUOTE(JSON_EXTRACT(tp, '$."name".r')), '') THEN
            SET p = JSON_SET(p, '$."name"', JSON_OBJECT('s', 'crm', 't', t, 'r', r, 'd', 1));
        END IF;
        -- is_active (rule latest)
        SET t = GREATEST(now_us,
            COALESCE(CAST(JSON_UNQUOTE(JSON_EXTRACT(OLD.`_provenance`, '$."is_active".t')) AS SIGNED), 0) + 1,
            COALESCE(CAST(JSON_UNQUOTE(JSON_EXTRACT(tp, '$."is_active".t')) AS SIGNED), 0) + 1);
        SET r = CONCAT('8', LPAD(LOWER(HEX(t)), 15, '0'), '80000001ed44d67700000000000000000000000000000000');
        IF BINARY r > BINARY COALESCE(JSON_UNQUOTE(JSON_EXTRACT(tp, '$."is_active".r')), '') THEN
            SET p = JSON_SET(p, '$."is_active"', JSON_OBJECT('s', 'crm', 't', t, 'r', r, 'd', 1));
        END IF;
        INSERT INTO `crm2w`.`customers_tombstones` (`id`, `_provenance`) VALUES (OLD.`id`, p)
            ON DUPLICATE KEY UPDATE `_provenance` = VALUES(`_provenance`);
    END IF;
END//
DELIMITER ;

