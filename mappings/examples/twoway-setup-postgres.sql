-- SPDX-License-Identifier: Apache-2.0
-- Two-way example (docs/TWO-WAY.md), PostgreSQL side: the wide table, the
-- stamping trigger for direct edits, and the publication of the reverse
-- pipeline.  Run as a superuser:
--   psql -U postgres -d cdctest -f mappings/examples/twoway-setup-postgres.sql
-- The function and trigger are generated from the mapping file by
--   autoglm-cdc mapping triggers -c mappings/examples/twoway-forward.yaml postgres
-- (tests/unit/t_twoway_sql checks that this file holds exactly that).
CREATE TABLE IF NOT EXISTS public.customer_2w (
    customer_id bigint PRIMARY KEY,
    name text,
    status text,
    email text,
    _provenance jsonb NOT NULL DEFAULT '{}'
);
ALTER TABLE public.customer_2w OWNER TO cdc;
-- the hand-written trigger of earlier versions of this example
DROP TRIGGER IF EXISTS customer_2w_stamp ON public.customer_2w;

-- autoglm-cdc mapping triggers: PostgreSQL (run with psql as a superuser:
-- the function is SECURITY DEFINER because
-- pg_replication_origin_session_is_setup() is not granted to PUBLIC)
CREATE OR REPLACE FUNCTION "public"."autoglm_cdc_twoway_stamp"() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $autoglm_cdc$
DECLARE
    f text; rule text; t bigint; r text; n jsonb; o jsonb; stored text;
BEGIN
    IF pg_replication_origin_session_is_setup() THEN
        RETURN NEW;             -- one of our sinks: its ranks travel with the values
    END IF;
    n := to_jsonb(NEW);
    o := CASE WHEN TG_OP = 'UPDATE' THEN to_jsonb(OLD) ELSE '{}'::jsonb END;
    FOR i IN 0 .. (TG_NARGS - 1) / 4 - 1 LOOP
        f := TG_ARGV[1 + 4 * i];
        rule := TG_ARGV[2 + 4 * i];
        CONTINUE WHEN TG_OP = 'UPDATE' AND n -> f IS NOT DISTINCT FROM o -> f;
        CONTINUE WHEN TG_OP = 'INSERT' AND coalesce(n -> f, 'null'::jsonb) = 'null'::jsonb;
        t := greatest((extract(epoch FROM clock_timestamp()) * 1000000)::bigint,
                      coalesce((o #>> ARRAY['_provenance', f, 't'])::bigint, 0) + 1);
        r := TG_ARGV[3 + 4 * i] || '8' || lpad(to_hex(t), 15, '0') || TG_ARGV[4 + 4 * i];
        stored := coalesce(o #>> ARRAY['_provenance', f, 'r'], '');
        IF r COLLATE "C" <= stored COLLATE "C" THEN
            NEW := jsonb_populate_record(NEW, jsonb_build_object(f, o -> f));
            RAISE NOTICE 'autoglm-cdc: % keeps % from % (rule %): this edit ranks lower',
                f, o -> f, o #>> ARRAY['_provenance', f, 's'], rule;
        ELSE
            NEW._provenance := coalesce(NEW._provenance, '{}'::jsonb) ||
                jsonb_build_object(f, jsonb_build_object('s', TG_ARGV[0], 't', t, 'r', r));
        END IF;
    END LOOP;
    RETURN NEW;
END
$autoglm_cdc$;

-- public.customer_2w: direct edits rank as source platform (priority 1, weight 1)
--   name: rule latest, rank '' || T || 800000012a4a32b200000000000000000000000000000000
--   status: rule latest, rank '' || T || 800000012a4a32b200000000000000000000000000000000
ALTER TABLE "public"."customer_2w" ADD COLUMN IF NOT EXISTS _provenance jsonb NOT NULL DEFAULT '{}';
DROP TRIGGER IF EXISTS autoglm_cdc_twoway ON "public"."customer_2w";
CREATE TRIGGER autoglm_cdc_twoway BEFORE INSERT OR UPDATE ON "public"."customer_2w"
    FOR EACH ROW EXECUTE FUNCTION "public"."autoglm_cdc_twoway_stamp"(
        'platform',
        'name', 'latest', '', '800000012a4a32b200000000000000000000000000000000',
        'status', 'latest', '', '800000012a4a32b200000000000000000000000000000000');

CREATE TABLE IF NOT EXISTS "public"."customer_2w_tombstones" ("customer_id" bigint NOT NULL, _provenance jsonb NOT NULL, PRIMARY KEY ("customer_id"));
CREATE OR REPLACE FUNCTION "public"."customer_2w_2w_del"() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $autoglm_cdc$
DECLARE
    o jsonb; tp jsonb; p jsonb; t bigint; r text; now_us bigint;
BEGIN
    IF pg_replication_origin_session_is_setup() THEN
        RETURN OLD;             -- one of our sinks: its tombstones carry their ranks
    END IF;
    SELECT x._provenance INTO tp FROM "public"."customer_2w_tombstones" x WHERE x."customer_id" = OLD."customer_id" FOR UPDATE;
    o := coalesce(OLD._provenance, '{}'::jsonb);
    tp := coalesce(tp, '{}'::jsonb);
    p := tp;
    now_us := (extract(epoch FROM clock_timestamp()) * 1000000)::bigint;
    -- name (rule latest)
    t := greatest(now_us, coalesce((o #>> ARRAY['name', 't'])::bigint, 0) + 1,
                  coalesce((tp #>> ARRAY['name', 't'])::bigint, 0) + 1);
    r := '' || '8' || lpad(to_hex(t), 15, '0') || '800000012a4a32b200000000000000000000000000000000';
    IF r COLLATE "C" > coalesce(tp #>> ARRAY['name', 'r'], '') COLLATE "C" THEN
        p := p || jsonb_build_object('name', jsonb_build_object('s', 'platform', 't', t, 'r', r, 'd', 1));
    END IF;
    -- status (rule latest)
    t := greatest(now_us, coalesce((o #>> ARRAY['status', 't'])::bigint, 0) + 1,
                  coalesce((tp #>> ARRAY['status', 't'])::bigint, 0) + 1);
    r := '' || '8' || lpad(to_hex(t), 15, '0') || '800000012a4a32b200000000000000000000000000000000';
    IF r COLLATE "C" > coalesce(tp #>> ARRAY['status', 'r'], '') COLLATE "C" THEN
        p := p || jsonb_build_object('status', jsonb_build_object('s', 'platform', 't', t, 'r', r, 'd', 1));
    END IF;
    -- email (rule latest)
    t := greatest(now_us, coalesce((o #>> ARRAY['email', 't'])::bigint, 0) + 1,
                  coalesce((tp #>> ARRAY['email', 't'])::bigint, 0) + 1);
    r := '' || '8' || lpad(to_hex(t), 15, '0') || '800000012a4a32b200000000000000000000000000000000';
    IF r COLLATE "C" > coalesce(tp #>> ARRAY['email', 'r'], '') COLLATE "C" THEN
        p := p || jsonb_build_object('email', jsonb_build_object('s', 'platform', 't', t, 'r', r, 'd', 1));
    END IF;
    INSERT INTO "public"."customer_2w_tombstones" ("customer_id", _provenance) VALUES (OLD."customer_id", p)
        ON CONFLICT ("customer_id") DO UPDATE SET _provenance = EXCLUDED._provenance;
    RETURN OLD;
END
$autoglm_cdc$;
DROP TRIGGER IF EXISTS autoglm_cdc_twoway_del ON "public"."customer_2w";
CREATE TRIGGER autoglm_cdc_twoway_del AFTER DELETE ON "public"."customer_2w"
    FOR EACH ROW EXECUTE FUNCTION "public"."customer_2w_2w_del"();

CREATE OR REPLACE FUNCTION "public"."customer_2w_2w_reins"() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $autoglm_cdc$
DECLARE
    tp jsonb; e jsonb; d jsonb; t bigint; r text; live boolean := false;
BEGIN
    IF pg_replication_origin_session_is_setup() THEN
        RETURN NEW;             -- one of our sinks: it merges tombstones itself
    END IF;
    SELECT x._provenance INTO tp FROM "public"."customer_2w_tombstones" x WHERE x."customer_id" = NEW."customer_id" FOR UPDATE;
    IF tp IS NULL THEN
        RETURN NEW;             -- no tombstone: a plain insert
    END IF;
    NEW._provenance := coalesce(NEW._provenance, '{}'::jsonb);
    -- name (rule latest)
    d := tp -> 'name';
    e := NEW._provenance -> 'name';
    IF e IS NOT NULL AND d IS NOT NULL THEN
        t := greatest((e ->> 't')::bigint, (d ->> 't')::bigint + 1);
        r := '' || '8' || lpad(to_hex(t), 15, '0') || '800000012a4a32b200000000000000000000000000000000';
        IF r COLLATE "C" <= (d ->> 'r') COLLATE "C" THEN
            NEW := jsonb_populate_record(NEW, jsonb_build_object('name', NULL));
            e := NULL;
            RAISE NOTICE 'autoglm-cdc: % stays deleted by % (rule %): this insert ranks lower',
                'name', d ->> 's', 'latest';
        ELSE
            e := jsonb_build_object('s', 'platform', 't', t, 'r', r);
        END IF;
    END IF;
    IF e IS NOT NULL THEN
        NEW._provenance := NEW._provenance || jsonb_build_object('name', e);
        live := live OR NOT (e ? 'd');
    ELSIF d IS NOT NULL AND to_jsonb(NEW) -> 'name' = 'null'::jsonb THEN
        NEW._provenance := NEW._provenance || jsonb_build_object('name', d);
    END IF;
    -- status (rule latest)
    d := tp -> 'status';
    e := NEW._provenance -> 'status';
    IF e IS NOT NULL AND d IS NOT NULL THEN
        t := greatest((e ->> 't')::bigint, (d ->> 't')::bigint + 1);
        r := '' || '8' || lpad(to_hex(t), 15, '0') || '800000012a4a32b200000000000000000000000000000000';
        IF r COLLATE "C" <= (d ->> 'r') COLLATE "C" THEN
            NEW := jsonb_populate_record(NEW, jsonb_build_object('status', NULL));
            e := NULL;
            RAISE NOTICE 'autoglm-cdc: % stays deleted by % (rule %): this insert ranks lower',
                'status', d ->> 's', 'latest';
        ELSE
            e := jsonb_build_object('s', 'platform', 't', t, 'r', r);
        END IF;
    END IF;
    IF e IS NOT NULL THEN
        NEW._provenance := NEW._provenance || jsonb_build_object('status', e);
        live := live OR NOT (e ? 'd');
    ELSIF d IS NOT NULL AND to_jsonb(NEW) -> 'status' = 'null'::jsonb THEN
        NEW._provenance := NEW._provenance || jsonb_build_object('status', d);
    END IF;
    -- email (rule latest)
    d := tp -> 'email';
    e := NEW._provenance -> 'email';
    IF e IS NOT NULL THEN
        NEW._provenance := NEW._provenance || jsonb_build_object('email', e);
        live := live OR NOT (e ? 'd');
    ELSIF d IS NOT NULL AND to_jsonb(NEW) -> 'email' = 'null'::jsonb THEN
        NEW._provenance := NEW._provenance || jsonb_build_object('email', d);
    END IF;
    IF NOT live THEN
        RAISE EXCEPTION 'autoglm-cdc: this insert ranks lower than the delete of its key on every field'
            USING HINT = 'insert it on the side that deleted it, or with values a higher source may write';
    END IF;
    DELETE FROM "public"."customer_2w_tombstones" x WHERE x."customer_id" = NEW."customer_id";
    RETURN NEW;
END
$autoglm_cdc$;
DROP TRIGGER IF EXISTS autoglm_cdc_twoway_reins ON "public"."customer_2w";
CREATE TRIGGER autoglm_cdc_twoway_reins BEFORE INSERT ON "public"."customer_2w"
    FOR EACH ROW EXECUTE FUNCTION "public"."customer_2w_2w_reins"();

ALTER TABLE public.customer_2w_tombstones OWNER TO cdc;
-- the reverse pipeline reads direct deletes' ranks from the tombstones table
CREATE PUBLICATION autoglm_cdc_twoway FOR TABLE public.customer_2w, public.customer_2w_tombstones;
