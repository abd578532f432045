-- Two-way example (docs/TWO-WAY.md), PostgreSQL side: the wide table, the
-- stamping trigger for direct edits, and the publication of the reverse
-- pipeline.  Run as a superuser (the trigger function is SECURITY DEFINER
-- because pg_replication_origin_session_is_setup() is not granted to
-- PUBLIC):
--   psql -U postgres -d cdctest -f mappings/examples/twoway-setup-postgres.sql
CREATE TABLE IF NOT EXISTS public.customer_2w (
    customer_id bigint PRIMARY KEY,
    name text,
    status text,
    email text,
    _provenance jsonb NOT NULL DEFAULT '{}'
);
ALTER TABLE public.customer_2w OWNER TO cdc;

-- TG_ARGV: source id, rule (latest|priority), priority ^ 0x80000000 as 8
-- hex digits, FNV-1a hash of the source id as 8 hex digits, the two-way
-- fields...  A direct edit (a session without our replication origin)
-- gets the rank of its source and time (at least the stored time + 1 µs);
-- if that rank does not beat the stored one (rule priority: a
-- higher-priority source owns the value) the edit is undone for that
-- field and a NOTICE says so.
CREATE OR REPLACE FUNCTION autoglm_cdc_twoway_stamp() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    f text; t bigint; r text; ts text; n jsonb; o jsonb; stored text;
BEGIN
    IF pg_replication_origin_session_is_setup() THEN
        RETURN NEW;             -- one of our sinks: its ranks travel with the values
    END IF;
    n := to_jsonb(NEW);
    o := CASE WHEN TG_OP = 'UPDATE' THEN to_jsonb(OLD) ELSE '{}'::jsonb END;
    FOR i IN 4 .. TG_NARGS - 1 LOOP
        f := TG_ARGV[i];
        CONTINUE WHEN TG_OP = 'UPDATE' AND n -> f IS NOT DISTINCT FROM o -> f;
        CONTINUE WHEN TG_OP = 'INSERT' AND n -> f = 'null'::jsonb;
        t := greatest((extract(epoch FROM clock_timestamp()) * 1000000)::bigint,
                      coalesce((o #>> ARRAY['_provenance', f, 't'])::bigint, 0) + 1);
        ts := '8' || lpad(to_hex(t), 15, '0');
        r := CASE TG_ARGV[1] WHEN 'priority' THEN TG_ARGV[2] || ts ELSE ts || TG_ARGV[2] END
             || TG_ARGV[3] || repeat('0', 32);
        stored := coalesce(o #>> ARRAY['_provenance', f, 'r'], '');
        IF r COLLATE "C" <= stored COLLATE "C" THEN
            NEW := jsonb_populate_record(NEW, jsonb_build_object(f, o -> f));
            RAISE NOTICE 'autoglm-cdc: % keeps % from % (rule %): this edit ranks lower',
                f, o -> f, o #>> ARRAY['_provenance', f, 's'], TG_ARGV[1];
        ELSE
            NEW._provenance := coalesce(NEW._provenance, '{}'::jsonb) ||
                jsonb_build_object(f, jsonb_build_object('s', TG_ARGV[0], 't', t, 'r', r));
        END IF;
    END LOOP;
    RETURN NEW;
END $$;

-- platform: priority 1 -> 80000001, fnv('platform') = 2a4a32b2
DROP TRIGGER IF EXISTS customer_2w_stamp ON public.customer_2w;
CREATE TRIGGER customer_2w_stamp BEFORE INSERT OR UPDATE ON public.customer_2w
    FOR EACH ROW EXECUTE FUNCTION
    autoglm_cdc_twoway_stamp('platform', 'latest', '80000001', '2a4a32b2', 'name', 'status');

CREATE PUBLICATION autoglm_cdc_twoway FOR TABLE public.customer_2w;
