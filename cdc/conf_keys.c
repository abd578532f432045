/* SPDX-License-Identifier: Apache-2.0 */
/*
 * conf_keys.c - the declared configuration keys (librdkafka's
 * rd_kafka_properties[], Redis's static_configs[]), and what is derived
 * from the table: lookup, "did you mean", type and bound checks, the
 * resolution of a loaded configuration, and docs/CONFIG.md.
 *
 * Adding a key: one row here, then `autoglm-cdc config --reference >
 * docs/CONFIG.md` (tests/cli/t_config.tap fails until the file matches).
 * The def column is what the reading code uses when the key is unset.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cdc/buf.h"
#include "cdc/conf.h"
#include "cdc/plugin.h"

#define I64MAX INT64_MAX
#define S CDC_KT_STRING
#define I CDC_KT_INT
#define B CDC_KT_BOOL
#define D CDC_KT_DURATION
#define E CDC_KT_ENUM
#define L CDC_KT_LIST
#define SECRET CDC_KF_SECRET

/* name, type, default, min, max, allowed, flags, option, components, doc */
const cdc_conf_key_t cdc_conf_keys[] = {
    /* ---- pipeline ---- */
    {"source.type", S, NULL, 0, 0, NULL, 0, "--source", "run, backfill, validate, status",
     "Source to read: mysql (also mariadb), postgres, or kafka (envelopes from topics)."},
    {"sink.type", S, "stdout", 0, 0, NULL, 0, "--sink", "run, decode, backfill, validate",
     "Sink to write: stdout, file, kafka, postgres (wide tables), mysql (wide tables), rabbitmq, mqtt or http (webhooks)."},
    {"sinks", L, NULL, 0, 0, NULL, 0, NULL, "run",
     "Fan-out: several sinks fed by one read of the source, e.g. [kafka, postgres]; each keeps its "
     "own settings block and acknowledges on its own, the checkpoint is the minimum over them. "
     "Instead of sink.type; each type once."},
    {"pipeline.name", CDC_KT_NAME, "<source.type>", 0, 0, NULL, 0, "--pipeline",
     "run, offsets, backfill, status, sinks",
     "Name of the pipeline: the checkpoint file <state.dir>/<name>.ckpt, metrics labels, "
     "the default application_id. No '/' and no '..'."},
    {"application_id", S, "<pipeline.name>", 0, 0, NULL, 0, "--application-id", "envelopes, sinks, status",
     "Application name carried in every envelope and shown by status."},
    {"format", E, "autoglm", 0, 0, "autoglm|debezium|xml", 0, "--format", "envelopes",
     "Envelope format (docs/ENVELOPE.md); xml: one XML document per message (rabbitmq, mqtt, http, kafka) or per line (file, stdout)."},
    {"debezium.schemas", B, "false", 0, 0, NULL, 0, NULL, "envelopes (format debezium)",
     "Write key and value as {\"schema\",\"payload\"}, as Kafka Connect's JsonConverter with "
     "schemas.enable=true."},
    {"debezium.time.precision.mode", E, "adaptive", 0, 0,
     "adaptive|adaptive_time_microseconds|connect|iso_string", 0, NULL, "envelopes (format debezium)",
     "Debezium's time.precision.mode; iso_string keeps our text values."},
    {"debezium.decimal.handling.mode", E, "precise", 0, 0, "precise|string|double", 0, NULL,
     "envelopes (format debezium)", "Debezium's decimal.handling.mode."},
    {"debezium.bigint.unsigned.handling.mode", E, "long", 0, 0, "long|precise", 0, NULL,
     "envelopes (format debezium)",
     "Debezium's bigint.unsigned.handling.mode (long keeps values above 2^63-1 exact)."},
    {"debezium.binary.handling.mode", E, "bytes", 0, 0, "bytes|base64|hex", 0, NULL,
     "envelopes (format debezium)", "Debezium's binary.handling.mode."},
    {"debezium.provide.transaction.metadata", B, "false", 0, 0, NULL, 0, NULL,
     "envelopes (format debezium), kafka sink",
     "Transaction blocks in events, and BEGIN/END events on <application_id>.transaction."},
    {"debezium.column.propagate.source.type", B, "false", 0, 0, NULL, 0, NULL,
     "envelopes (format debezium)",
     "Add __debezium.source.column.* parameters to every column schema."},
    {"output", S, NULL, 0, 0, NULL, 0, "-o, --output", "file sink",
     "Path of the file sink; a .zst suffix compresses with zstd."},
    {"state.dir", S, "state", 0, 0, NULL, 0, "--state-dir", "run, offsets, backfill, status",
     "Directory of checkpoint and backfill state files."},
    {"pipeline.max_inflight", I, "10000", 1, 100000000, NULL, 0, NULL, "run",
     "Transactions handed to the sink and not yet acknowledged before the reader waits."},
    {"pipeline.max_inflight_mb", I, "8", 1, 65536, NULL, 0, NULL, "run",
     "Bytes (MiB) of transactions in flight before the reader waits."},
    {"pipeline.fragment_rows", I, "4096", 0, 100000000, NULL, 0, NULL, "run (mysql, postgres sources)",
     "A transaction with more row changes is handed to the sink in fragments of this many as it is "
     "decoded (0: no row limit); the checkpoint still moves only at its end."},
    {"pipeline.fragment_kb", I, "1024", 0, 4194304, NULL, 0, NULL, "run (mysql, postgres sources)",
     "... or of this many KiB of decoded changes (0: no size limit)."},
    {"checkpoint.interval_ms", I, "1000", 1, 3600000, NULL, 0, NULL, "run",
     "How often the checkpoint file is written (ms)."},
    {"errors.mode", E, "stop", 0, 0, "stop|dead-letter", 0, NULL, "wide sinks, kafka sink, http sink",
     "What a change a sink cannot apply does: stop (exit 65, nothing of its transaction written) "
     "or dead-letter (kept with its error, the pipeline goes on)."},
    {"errors.dead_letter_table", S, "autoglm_cdc_dead_letter", 0, 0, NULL, 0, NULL, "wide sinks",
     "Table of the dead letters in the sink database (errors.mode: dead-letter)."},
    {"errors.dead_letter_topic", S, "{source}.dead_letter", 0, 0, NULL, 0, NULL, "kafka sink",
     "Topic template of the dead letters of the Kafka sink (errors.mode: dead-letter)."},
    {"run.max_txns", I, "0", 0, I64MAX, NULL, 0, "--max-txns", "run",
     "Stop after this many transactions (0: never)."},
    {"run.idle_exit_ms", I, "0", 0, I64MAX, NULL, 0, "--idle-exit", "run",
     "Stop after this many ms without a change (0: never)."},
    {"filter.include", L, NULL, 0, 0, NULL, 0, "--include", "run, decode",
     "db.table globs to capture (all when unset)."},
    {"filter.exclude", L, NULL, 0, 0, NULL, 0, "--exclude", "run, decode",
     "db.table globs to skip."},
    {"mapping.files", L, NULL, 0, 0, NULL, 0, "--mapping", "wide sinks, validate, mapping triggers",
     "Mapping YAML files or directories (docs/MAPPINGS.md)."},
    {"log.format", E, "text", 0, 0, "text|json", 0, "--log-format", "logger",
     "Log line format: text, or one JSON object per line."},
    {"decode.json_columns", L, NULL, 0, 0, NULL, 0, "--json-columns", "decode",
     "db.table.column globs of MariaDB JSON columns to embed as JSON."},

    /* ---- HTTP endpoint and status ---- */
    {"http.listen", S, NULL, 0, 0, NULL, 0, "--http", "run (HTTP endpoint), status",
     "ADDR:PORT (or PORT: 127.0.0.1) serving /, /status, /metrics, /livez, /readyz."},
    {"http.token", S, NULL, 0, 0, NULL, SECRET, NULL, "HTTP endpoint, status",
     "Bearer token required by /, /status and /metrics (header or cookie, never the URL)."},
    {"http.header_timeout_ms", I, "3000", 100, 3600000, NULL, 0, NULL, "HTTP endpoint",
     "A request's line and headers must arrive within this many ms of the connect, or the "
     "connection is closed (slow clients cannot hold slots)."},
    {"ready.max_lag_s", I, "300", 1, I64MAX, NULL, 0, NULL, "HTTP endpoint",
     "/readyz fails when the lag exceeds this many seconds."},
    {"ready.max_checkpoint_age_s", I, "120", 1, I64MAX, NULL, 0, NULL, "HTTP endpoint",
     "/readyz fails when delivered changes stay uncheckpointed this long (s)."},
    {"ready.sink_stall_s", I, "60", 1, I64MAX, NULL, 0, NULL, "HTTP endpoint",
     "/readyz fails when nothing is delivered this long while transactions are in flight (s)."},
    {"metrics.pg_slot", B, "true", 0, 0, NULL, 0, NULL, "HTTP endpoint",
     "Export the PostgreSQL slot's retained WAL in /metrics."},
    {"status.url", L, NULL, 0, 0, NULL, 0, "--url", "status",
     "HTTP endpoints of running daemons to ask (http://host:port)."},
    {"status.format", E, "table", 0, 0, "table|json", 0, "--json (json)", "status",
     "Output of the status command."},

    /* ---- MySQL / MariaDB source ---- */
    {"mysql.dsn", S, NULL, 0, 0, NULL, SECRET, "--mysql-dsn", "mysql source, backfill, validate",
     "mysql://user:password@host:port[,host:port...][/db][?ssl-mode=...&ssl-ca=...]; several "
     "servers: failover by GTID (docs/OPERATIONS.md); [::1]:3306 for IPv6; user and password "
     "%-decoded, the password ends at the last '@'. The DSN gives defaults: every explicit mysql.* "
     "key (host, port, user, password, database, ssl.mode, ssl.ca, ssl.cert, ssl.key) overrides "
     "its part of the DSN."},
    {"mysql.hosts", L, NULL, 0, 0, NULL, 0, NULL, "mysql source",
     "More servers host:port,... the source may fail over to (by GTID, docs/OPERATIONS.md)."},
    {"mysql.failover_read_only", B, "false", 0, 0, NULL, 0, NULL, "mysql source",
     "Also fail over to a read-only server (a replica) that holds every delivered GTID."},
    {"mysql.host", S, "127.0.0.1", 0, 0, NULL, 0, NULL, "mysql source, backfill, validate",
     "Server host."},
    {"mysql.port", I, "3306", 1, 65535, NULL, 0, NULL, "mysql source, backfill, validate",
     "Server port."},
    {"mysql.user", S, "root", 0, 0, NULL, 0, NULL, "mysql source, backfill, validate",
     "User."},
    {"mysql.password", S, NULL, 0, 0, NULL, SECRET, NULL, "mysql source, backfill, validate",
     "Password."},
    {"mysql.database", S, NULL, 0, 0, NULL, 0, NULL, "mysql source",
     "Database to connect to."},
    {"mysql.server_id", I, "<derived from pipeline.name>", 1, 4294967295LL, NULL, 0, "--server-id",
     "mysql source", "Our replica server_id; must differ from every other replica "
     "(the default is 4000 + FNV-1a(pipeline.name) mod 100000)."},
    {"mysql.from", S, "now", 0, 0, NULL, 0, "--from", "mysql source",
     "Where a pipeline without checkpoint starts: now, beginning, FILE:POS, a MariaDB GTID "
     "state (0-1-100) or a MySQL GTID set (uuid:1-100; FILE:POS is refused on MySQL with "
     "gtid_mode=ON unless mysql.position=file)."},
    {"mysql.position", E, "auto", 0, 0, "auto|gtid|file", 0, NULL, "mysql source",
     "How the binlog dump is positioned: auto = by GTID when the server keeps GTIDs (MariaDB "
     "with a GTID state, MySQL with gtid_mode=ON: COM_BINLOG_DUMP_GTID), else by file:pos; "
     "gtid = always by GTID (start fails on MySQL without gtid_mode=ON); file = by file:pos "
     "(a MySQL source then cannot fail over)."},
    {"mysql.heartbeat_s", I, "5", 1, 3600, NULL, 0, NULL, "mysql source",
     "A binlog link silent this long (no event, no heartbeat) counts as lost and is "
     "reconnected (s)."},
    {"mysql.heartbeat_ms", I, "<mysql.heartbeat_s / 4>", 100, 3600000, NULL, 0, NULL, "mysql source",
     "Heartbeat period the server is asked for (ms), at most half of mysql.heartbeat_s."},
    {"mysql.connect_timeout_ms", I, "10000", 100, 3600000, NULL, 0, NULL, "mysql source, backfill",
     "Connect timeout (ms)."},
    {"mysql.queue_txns", I, "128", 1, 1000000, NULL, 0, NULL, "mysql source",
     "Decoded transactions queued between the reader and the pipeline."},
    {"mysql.queue_mb", I, "4", 1, 65536, NULL, 0, NULL, "mysql source",
     "Bytes (MiB) queued between the reader and the pipeline."},
    {"mysql.reconnect", B, "true", 0, 0, NULL, 0, NULL, "mysql source",
     "Reconnect with backoff when the server goes away."},
    {"mysql.skip_own", B, "true", 0, 0, NULL, 0, NULL, "mysql source",
     "Skip transactions written by our own MySQL sink (two-way sync)."},
    {"mysql.ssl.mode", E, "preferred", 0, 0, "disabled|preferred|required|verify_ca|verify_identity", 0, NULL,
     "mysql source, backfill", "TLS mode; verify_identity when mysql.ssl.ca is set."},
    {"mysql.ssl.ca", S, NULL, 0, 0, NULL, 0, NULL, "mysql source, backfill", "CA certificate file (PEM)."},
    {"mysql.ssl.cert", S, NULL, 0, 0, NULL, 0, NULL, "mysql source, backfill", "Client certificate file (PEM)."},
    {"mysql.ssl.key", S, NULL, 0, 0, NULL, 0, NULL, "mysql source, backfill", "Client key file (PEM)."},

    /* ---- PostgreSQL source ---- */
    {"postgres.dsn", CDC_KT_CONNINFO, NULL, 0, 0, NULL, SECRET, "--postgres-dsn",
     "postgres source, backfill, validate", "libpq conninfo (host=... dbname=...) or postgresql:// URI."},
    {"postgres.slot", S, "autoglm_cdc", 0, 0, NULL, 0, NULL, "postgres source, backfill",
     "Logical replication slot."},
    {"postgres.publication", S, "autoglm_cdc", 0, 0, NULL, 0, NULL, "postgres source, backfill",
     "Publication (created for postgres.tables when missing)."},
    {"postgres.tables", L, NULL, 0, 0, NULL, 0, NULL, "postgres source, backfill",
     "schema.table list of the publication (all tables when unset)."},
    {"postgres.skip_origins", L, "autoglm_cdc_*", 0, 0, NULL, 0, NULL, "postgres source",
     "Replication origin globs whose changes are skipped (two-way sync)."},
    {"postgres.from", S, "now", 0, 0, NULL, 0, "--from", "postgres source",
     "Where a pipeline without checkpoint starts: now or an LSN X/Y."},
    {"postgres.status_interval_s", I, "10", 1, 3600, NULL, 0, NULL, "postgres source",
     "Standby status update period (s); each asks the server for a reply."},
    {"postgres.work_mem", I, "16", 1, 1048576, NULL, 0, NULL, "postgres source",
     "MiB a streamed in-progress transaction (protocol 2) may hold in memory before it is spilled "
     "to <state.dir>/<pipeline>.spill.<slot>.<xid>, like the server's logical_decoding_work_mem."},
    {"state.max_spill_mb", I, "10240", 1, 1073741824, NULL, 0, NULL, "postgres source",
     "MiB all spill files may hold; beyond, the run stops with exit 78 (never runs out of memory)."},
    {"postgres.timeout_s", I, "30", 0, 86400, NULL, 0, NULL, "postgres source",
     "Nothing from the server this long while a reply is due: the link counts as lost "
     "(s; 0: off; at least twice postgres.status_interval_s). Also the session's "
     "wal_sender_timeout."},
    {"postgres.slot_failover", B, "true", 0, 0, NULL, 0, NULL, "postgres source",
     "PostgreSQL 17+: create the slot with failover, so standbys with sync_replication_slots "
     "carry it over."},
    {"postgres.heartbeat_ms", I, "0", 0, 3600000, NULL, 0, NULL, "postgres source",
     "Standby status period (ms; 0: the default of the source)."},

    /* ---- Kafka ---- */
    {"kafka.brokers", L, NULL, 0, 0, NULL, 0, "--kafka-brokers", "kafka sink, kafka source",
     "Bootstrap brokers host:port,..."},
    {"kafka.topic", S, "{source}.{db}.{table}", 0, 0, NULL, 0, "--topic", "kafka sink",
     "Topic template; {source}, {db}, {table} are replaced."},
    {"kafka.topics", L, NULL, 0, 0, NULL, 0, NULL, "kafka source", "Topics to consume."},
    {"kafka.key", E, "pk", 0, 0, "pk|none", 0, NULL, "kafka sink",
     "Message key: the primary key as a JSON object, or none."},
    {"kafka.tombstones", B, "<true for format debezium, else false>", 0, 0, NULL, 0, NULL, "kafka sink",
     "Send a tombstone (null value) after each delete (Debezium's tombstones.on.delete)."},
    {"kafka.topic_replication_factor", I, "<broker default>", -1, 10000, NULL, 0, NULL, "kafka sink",
     "Create each topic on first use with this replication factor (-1: broker default)."},
    {"kafka.topic_min_insync_replicas", I, "<broker default>", 1, 10000, NULL, 0, NULL, "kafka sink",
     "Create each topic on first use with this min.insync.replicas."},
    {"kafka.topic_partitions", I, "<broker default>", -1, 10000, NULL, 0, NULL, "kafka sink",
     "Create each topic on first use with this many partitions (-1: broker default)."},
    {"kafka.group.id", S, "autoglm-cdc-<pipeline.name>", 0, 0, NULL, 0, NULL, "kafka source",
     "Consumer group."},
    {"kafka.*", CDC_KT_NAMESPACE, NULL, 0, 0, NULL, 0, "-X kafka.<property>=V", "kafka sink, kafka source",
     "Any librdkafka property, passed verbatim and checked by librdkafka "
     "(e.g. kafka.security.protocol, kafka.sasl.password)."},
    /* ---- RabbitMQ sink ---- */
    {"rabbitmq.url", S, "amqp://127.0.0.1:5672/", 0, 0, NULL, 0, NULL, "rabbitmq sink",
     "amqp://[user[:password]@]host[:port][/vhost]; amqps:// for TLS. A password here is "
     "masked in logs and config output; rabbitmq.password_file keeps it out of the file."},
    {"rabbitmq.user", S, "guest", 0, 0, NULL, 0, NULL, "rabbitmq sink",
     "User (overrides the URL)."},
    {"rabbitmq.password", S, "guest", 0, 0, NULL, SECRET, NULL, "rabbitmq sink",
     "Password (overrides the URL); rabbitmq.password_file reads it from a file."},
    {"rabbitmq.exchange", S, "autoglm-cdc", 0, 0, NULL, 0, NULL, "rabbitmq sink",
     "Exchange every change is published to."},
    {"rabbitmq.exchange_type", E, "topic", 0, 0, "topic|direct|fanout|headers", 0, NULL, "rabbitmq sink",
     "Type of the exchange when it is declared."},
    {"rabbitmq.declare", B, "true", 0, 0, NULL, 0, NULL, "rabbitmq sink",
     "Declare the exchange (durable) at connect."},
    {"rabbitmq.routing_key", S, "{db}.{table}.{op}", 0, 0, NULL, 0, NULL, "rabbitmq sink",
     "Routing key template; {source}, {db}, {table}, {op} (insert, update, delete, read, truncate)."},
    {"rabbitmq.unroutable", E, "fail", 0, 0, "fail|drop", 0, NULL, "rabbitmq sink",
     "A message no queue takes (mandatory publish returned): stop with exit 65, or log and drop it."},
    {"rabbitmq.event", B, "false", 0, 0, NULL, 0, NULL, "rabbitmq sink",
     "Publish one data-updated event after each transaction, listing its tables."},
    {"rabbitmq.event_routing_key", S, "event.data-updated", 0, 0, NULL, 0, NULL, "rabbitmq sink",
     "Routing key of the data-updated events."},
    {"rabbitmq.max_unconfirmed", I, "10000", 1, 10000000, NULL, 0, NULL, "rabbitmq sink",
     "Messages published and not yet confirmed before the reader waits."},
    {"rabbitmq.reconnect_timeout_ms", I, "300000", 1000, I64MAX, NULL, 0, NULL, "rabbitmq sink",
     "Stop with exit 69 after the broker is unreachable this long (ms)."},
    {"rabbitmq.heartbeat_s", I, "30", 0, 3600, NULL, 0, NULL, "rabbitmq sink",
     "AMQP heartbeat (s; 0 disables)."},
    {"rabbitmq.tls.ca", S, NULL, 0, 0, NULL, 0, NULL, "rabbitmq sink", "CA certificate file (PEM); implies TLS."},
    {"rabbitmq.tls.cert", S, NULL, 0, 0, NULL, 0, NULL, "rabbitmq sink", "Client certificate file (PEM)."},
    {"rabbitmq.tls.key", S, NULL, 0, 0, NULL, 0, NULL, "rabbitmq sink", "Client key file (PEM)."},
    {"rabbitmq.tls.verify", B, "true", 0, 0, NULL, 0, NULL, "rabbitmq sink",
     "Verify the broker's certificate and host name."},

    /* ---- MQTT sink ---- */
    {"mqtt.host", S, "127.0.0.1", 0, 0, NULL, 0, NULL, "mqtt sink", "Broker host."},
    {"mqtt.port", I, "1883", 1, 65535, NULL, 0, NULL, "mqtt sink", "Broker port."},
    {"mqtt.protocol", E, "5", 0, 0, "3.1.1|5", 0, NULL, "mqtt sink", "MQTT protocol version."},
    {"mqtt.qos", I, "1", 0, 2, NULL, 0, NULL, "mqtt sink",
     "QoS of every message; delivered means PUBACK (1), PUBCOMP (2) or sent (0)."},
    {"mqtt.topic", S, "{source}/{db}/{table}", 0, 0, NULL, 0, NULL, "mqtt sink",
     "Topic template; {source}, {db}, {table}, {op}."},
    {"mqtt.retain", B, "false", 0, 0, NULL, 0, NULL, "mqtt sink",
     "Retained last state per key: topic gets /<key>, a delete clears it."},
    {"mqtt.client_id", S, "autoglm-cdc-<application_id>", 0, 0, NULL, 0, NULL, "mqtt sink",
     "Stable client id of the persistent session."},
    {"mqtt.clean_session", B, "false", 0, 0, NULL, 0, NULL, "mqtt sink",
     "Start a clean session (loses messages in flight across reconnects)."},
    {"mqtt.session_expiry_s", I, "86400", 0, 4294967295LL, NULL, 0, NULL, "mqtt sink",
     "MQTT 5 session expiry interval (s)."},
    {"mqtt.user", S, NULL, 0, 0, NULL, 0, NULL, "mqtt sink", "User name."},
    {"mqtt.password", S, NULL, 0, 0, NULL, SECRET, NULL, "mqtt sink",
     "Password; mqtt.password_file reads it from a file."},
    {"mqtt.keepalive_s", I, "60", 5, 65535, NULL, 0, NULL, "mqtt sink", "Keepalive interval (s)."},
    {"mqtt.tcp_nodelay", B, "true", 0, 0, NULL, 0, NULL, "mqtt sink", "Disable Nagle's algorithm."},
    {"mqtt.max_inflight", I, "1000", 1, 65000, NULL, 0, NULL, "mqtt sink",
     "Messages published and not yet acknowledged before the reader waits."},
    {"mqtt.reconnect_timeout_ms", I, "300000", 1000, I64MAX, NULL, 0, NULL, "mqtt sink",
     "Stop with exit 69 after the broker is unreachable this long (ms)."},
    {"mqtt.tls.ca", S, NULL, 0, 0, NULL, 0, NULL, "mqtt sink", "CA certificate file (PEM); enables TLS."},
    {"mqtt.tls.cert", S, NULL, 0, 0, NULL, 0, NULL, "mqtt sink", "Client certificate file (PEM)."},
    {"mqtt.tls.key", S, NULL, 0, 0, NULL, 0, NULL, "mqtt sink", "Client key file (PEM)."},
    {"mqtt.tls.verify", B, "true", 0, 0, NULL, 0, NULL, "mqtt sink",
     "Verify the broker's certificate host name."},

    /* ---- HTTP webhook sink (--sink http) ---- */
    {"webhook.url", S, NULL, 0, 0, NULL, 0, NULL, "http sink",
     "URL template changes are POSTed to; {source}, {db}, {table}, {op} (URL-escaped)."},
    {"webhook.batch", I, "1", 1, 100000, NULL, 0, NULL, "http sink",
     "Changes per request (1: one envelope per request)."},
    {"webhook.batch_format", E, "array", 0, 0, "array|ndjson", 0, NULL, "http sink",
     "Body of a batch: a JSON array, or one envelope per line."},
    {"webhook.linger_ms", I, "100", 0, 3600000, NULL, 0, NULL, "http sink",
     "Longest wait for a batch to fill (ms)."},
    {"webhook.version", E, "1.1", 0, 0, "1.1|2", 0, NULL, "http sink",
     "HTTP version: 1.1, or 2 (https: h2 by ALPN where offered; http://: h2c by prior knowledge)."},
    {"webhook.timeout_ms", I, "30000", 100, 3600000, NULL, 0, NULL, "http sink",
     "Timeout of one request (ms)."},
    {"webhook.connect_timeout_ms", I, "10000", 100, 3600000, NULL, 0, NULL, "http sink",
     "Connect timeout (ms)."},
    {"webhook.retry_backoff_ms", I, "200", 1, 3600000, NULL, 0, NULL, "http sink",
     "First retry delay (ms); doubled per attempt, jittered."},
    {"webhook.retry_max_backoff_ms", I, "30000", 1, 3600000, NULL, 0, NULL, "http sink",
     "Cap of the retry delay (ms); a Retry-After is capped at 10 times this."},
    {"webhook.retry_timeout_ms", I, "300000", 1, I64MAX, NULL, 0, NULL, "http sink",
     "Stop with exit 69 after a request failed this long (ms)."},
    {"webhook.hmac_secret", S, NULL, 0, 0, NULL, SECRET, NULL, "http sink",
     "Key of the HMAC-SHA256 body signature; webhook.hmac_secret_file reads it from a file."},
    {"webhook.signature_header", S, "X-Autoglm-Signature-256", 0, 0, NULL, 0, NULL, "http sink",
     "Header carrying sha256=<hex HMAC of the body>."},
    {"webhook.bearer_token", S, NULL, 0, 0, NULL, SECRET, NULL, "http sink",
     "Sent as Authorization: Bearer <token>."},
    {"webhook.jwt.secret", S, NULL, 0, 0, NULL, SECRET, NULL, "http sink",
     "HS256 key of a JWT bearer token on every request; webhook.jwt.secret_file reads it from a file."},
    {"webhook.jwt.alg", E, "HS256", 0, 0, "HS256|RS256|ES256", 0, NULL, "http sink",
     "JWT signature: HS256 (webhook.jwt.secret), RS256 or ES256 (webhook.jwt.key_file)."},
    {"webhook.jwt.key_file", S, NULL, 0, 0, NULL, 0, NULL, "http sink",
     "PEM private key (RSA for RS256, EC P-256 for ES256) that signs the JWT."},
    {"webhook.jwt.issuer", S, "<application_id>", 0, 0, NULL, 0, NULL, "http sink", "JWT iss claim."},
    {"webhook.jwt.audience", S, NULL, 0, 0, NULL, 0, NULL, "http sink", "JWT aud claim (none when unset)."},
    {"webhook.jwt.lifetime_s", I, "300", 2, 86400, NULL, 0, NULL, "http sink",
     "exp - iat of each JWT (s); a token is re-signed once half of it has passed."},
    {"webhook.jwt.claims", S, NULL, 0, 0, NULL, 0, NULL, "http sink",
     "Extra JWT claims as one JSON object, e.g. {\"sub\":\"cdc\"}; iss, iat, exp, aud have their own keys."},
    {"webhook.tls.ca", S, NULL, 0, 0, NULL, 0, NULL, "http sink", "CA certificate file (PEM) for https."},
    {"webhook.tls.verify", B, "true", 0, 0, NULL, 0, NULL, "http sink",
     "Verify the receiver's certificate and host name."},
    {"errors.dead_letter_file", S, "<state.dir>/<pipeline.name>.dead_letter.jsonl", 0, 0, NULL, 0, NULL,
     "http sink", "JSON-lines file of the changes a webhook refused (errors.mode: dead-letter)."},

    /* ---- XML format ---- */
    {"xml.root", S, "change", 0, 0, NULL, 0, NULL, "format=xml",
     "Root element of each document; {table} names it after the table."},
    {"xml.names", L, NULL, 0, 0, NULL, 0, NULL, "format=xml",
     "Element names: [db.]table.column=element or column=element, comma separated."},
    {"xml.values", L, NULL, 0, 0, NULL, 0, NULL, "format=xml",
     "Value replacements: column:value=replacement (e.g. isActive:1=enabled)."},

    {"kafka_source.bad_message", E, "fail", 0, 0, "fail|skip", 0, NULL, "kafka source",
     "A message that is not an envelope: stop, or log it with its offset and go on."},
    {"kafka_source.from", E, "earliest", 0, 0, "earliest|latest", 0, NULL, "kafka source",
     "Where a group without committed offsets starts."},

    /* ---- wide-table sinks ---- */
#define WIDE_SINK_KEYS(P, C, BATCH)                                           \
    {P ".batch_rows", I, BATCH, 1, 10000000, NULL, 0, NULL, C,                \
     "Rows per batch."},                                                       \
    {P ".flush_ms", I, "200", 0, 3600000, NULL, 0, NULL, C,                   \
     "Longest wait before a partial batch is written (ms)."},                  \
    {P ".create_tables", B, "true", 0, 0, NULL, 0, NULL, C,                   \
     "Create missing wide tables and columns."},                               \
    {P ".same_value", E, "stamp", 0, 0, "stamp|skip", 0, NULL, C,             \
     "A write of the value already held: stamp its provenance, or skip it "   \
     "(docs/TWO-WAY.md)."},                                                    \
    {P ".tombstone_keep", D, "0", 0, 0, NULL, 0, NULL, C,                     \
     "How long tombstones of deleted keys are kept (0: forever)."},            \
    {P ".tombstone_purge_every", D, "5m", 1000000, 0, NULL, 0, NULL, C,       \
     "How often old tombstones are purged."}
    {"postgres_sink.dsn", CDC_KT_CONNINFO, NULL, 0, 0, NULL, SECRET, NULL, "postgres sink, validate",
     "libpq conninfo or URI of the wide-table database."},
    WIDE_SINK_KEYS("postgres_sink", "postgres sink", "20000"),
    {"postgres_sink.fillfactor", I, "80", 10, 100, NULL, 0, NULL, "postgres sink",
     "Fillfactor of created wide tables (%)."},
    {"postgres_sink.offsets_table", S, "autoglm_cdc_offsets", 0, 0, NULL, 0, NULL, "postgres sink",
     "Table holding each pipeline's position, written in the batch's transaction."},
    {"postgres_sink.origin", S, "autoglm_cdc_<pipeline.name>", 0, 0, NULL, 0, NULL, "postgres sink",
     "Replication origin of the sink's session (empty: none)."},
    {"postgres_sink.reconnect_timeout_ms", I, "300000", 0, I64MAX, NULL, 0, NULL, "postgres sink",
     "Reconnect in place for this long when the database goes away, then exit 69 (ms; 0: at once)."},
    {"mysql_sink.dsn", S, NULL, 0, 0, NULL, SECRET, NULL, "mysql sink, validate",
     "mysql://user:password@host:port/db[?ssl-mode=...&ssl-ca=...] of the wide-table database "
     "(the grammar of mysql.dsn)."},
    WIDE_SINK_KEYS("mysql_sink", "mysql sink", "5000"),
    {"mysql_sink.marker", B, "true", 0, 0, NULL, 0, NULL, "mysql sink",
     "Write the marker row that lets the MySQL source skip our own writes."},
#undef WIDE_SINK_KEYS

    /* ---- backfill ---- */
    {"backfill.tables", L, NULL, 0, 0, NULL, 0, "--table (repeatable)", "backfill",
     "Tables to snapshot (all captured tables when unset)."},
    {"backfill.where", S, NULL, 0, 0, NULL, 0, "--where", "backfill", "Row condition (SQL)."},
    {"backfill.chunk_size", I, "5000", 1, 1000000, NULL, 0, "--chunk-size", "backfill", "Rows per chunk."},
    {"backfill.max_rows_per_sec", I, "0", 0, I64MAX, NULL, 0, "--max-rows-per-sec", "backfill",
     "Throttle (0: none)."},
    {"backfill.parallel", I, "1", 1, 64, NULL, 0, "--parallel", "backfill", "Tables snapshotted in parallel."},
    {"backfill.mode", E, "auto", 0, 0, "auto|initial|incremental", 0, NULL, "backfill",
     "initial: the first load before streaming; incremental: watermarked chunks beside a running "
     "stream; auto: initial without a checkpoint, else incremental."},
    {"backfill.watermarks", B, "true", 0, 0, NULL, 0, NULL, "backfill",
     "Bracket chunks with watermarks so that concurrent changes win."},
    {"backfill.watermark_timeout_ms", I, "60000", 1, 3600000, NULL, 0, NULL, "backfill",
     "How long to wait for a watermark to come back through the stream (ms)."},
    {"backfill.inflight_chunks", I, "4", 1, 64, NULL, 0, NULL, "backfill", "Chunks read ahead."},
    {"backfill.kafka_bulk", B, "true", 0, 0, NULL, 0, NULL, "backfill",
     "Producer settings for bulk loads (linger, batch size, lz4) unless set."},
    {"backfill.signal_table", S, NULL, 0, 0, NULL, 0, NULL, "backfill",
     "db.table that receives the watermark rows."},
    /* ---- reconcile ---- */
    {"reconcile.max_memory_mb", I, "0", 0, 1048576, NULL, 0, NULL, "reconcile",
     "Bound on the memory of the recomputation (MB, 0: none): reconcile estimates it from the "
     "source tables' estimated row counts and reads the sources in as many key partitions as "
     "it needs (--partitions N sets the count instead)."},
    {"backfill.server_id", I, "<900000000 + pid-derived>", 1, 4294967295LL, NULL, 0, NULL, "backfill",
     "First replica server_id of the watermark readers (one per worker)."},
    {NULL, 0, NULL, 0, 0, NULL, 0, NULL, NULL, NULL},
};

static const char *const ktype_name[] = {
    [CDC_KT_STRING] = "string", [CDC_KT_INT] = "integer",
    [CDC_KT_BOOL] = "boolean", [CDC_KT_DURATION] = "duration",
    [CDC_KT_ENUM] = "enum", [CDC_KT_LIST] = "list",
    [CDC_KT_NAME] = "name", [CDC_KT_CONNINFO] = "conninfo",
    [CDC_KT_NAMESPACE] = "pass-through",
};

/* ---- lookup ------------------------------------------------------------ */

static const cdc_conf_key_t *find_exact(const char *key)
{
    for (const cdc_conf_key_t *k = cdc_conf_keys; k->name; k++)
        if (k->type != CDC_KT_NAMESPACE && !strcmp(k->name, key))
            return k;
    for (const cdc_conf_key_t *k = cdc_conf_keys; k->name; k++) {
        size_t n = strlen(k->name) - 1; /* "kafka." of "kafka.*" */
        if (k->type == CDC_KT_NAMESPACE && !strncmp(key, k->name, n) &&
            key[n])
            return k;
    }
    return NULL;
}

const cdc_conf_key_t *cdc_conf_key_find(const char *key, const char **base)
{
    const cdc_conf_key_t *k = find_exact(key);
    size_t n = strlen(key);

    if (base)
        *base = NULL;
    if (k && k->type != CDC_KT_NAMESPACE)
        return k;
    /* K_file for a secret K */
    if (n > 5 && !strcmp(key + n - 5, "_file")) {
        char b[256];
        const cdc_conf_key_t *bk;
        if (n - 5 >= sizeof(b))
            return k;
        memcpy(b, key, n - 5);
        b[n - 5] = '\0';
        bk = find_exact(b);
        if (bk && ((bk->flags & CDC_KF_SECRET) ||
                   (bk->type == CDC_KT_NAMESPACE && cdc_conf_is_secret(b)))) {
            if (base) {
                /* the base name lives in the table only for declared keys;
                 * pass-through bases point into key itself */
                *base = bk->type == CDC_KT_NAMESPACE ? NULL : bk->name;
            }
            return bk;
        }
    }
    return k;
}

int cdc_conf_key_is_section(const char *prefix)
{
    size_t n = strlen(prefix);

    for (const cdc_conf_key_t *k = cdc_conf_keys; k->name; k++)
        if (!strncmp(k->name, prefix, n) && k->name[n] == '.')
            return 1;
    return 0;
}

/* Optimal string alignment distance (Damerau-Levenshtein without
 * repeated edits): "dns" is one step from "dsn". */
static int osa_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    int *d, r;

    if (la > 128 || lb > 128)
        return 1000;
    d = cdc_xcalloc((la + 1) * (lb + 1), sizeof(int));
#define DD(i, j) d[(i) * (lb + 1) + (j)]
    for (size_t i = 0; i <= la; i++)
        DD(i, 0) = (int)i;
    for (size_t j = 0; j <= lb; j++)
        DD(0, j) = (int)j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            int cost = tolower((unsigned char)a[i - 1]) !=
                       tolower((unsigned char)b[j - 1]);
            int v = DD(i - 1, j) + 1;
            if (DD(i, j - 1) + 1 < v)
                v = DD(i, j - 1) + 1;
            if (DD(i - 1, j - 1) + cost < v)
                v = DD(i - 1, j - 1) + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                DD(i - 2, j - 2) + 1 < v)
                v = DD(i - 2, j - 2) + 1;
            DD(i, j) = v;
        }
    r = DD(la, lb);
#undef DD
    free(d);
    return r;
}

const char *cdc_conf_key_suggest(const char *key)
{
    const char *best = NULL;
    int bestd = 1000;
    const char *klast = strrchr(key, '.');

    for (const cdc_conf_key_t *k = cdc_conf_keys; k->name; k++) {
        int dist;
        if (k->type == CDC_KT_NAMESPACE)
            continue;
        dist = osa_distance(key, k->name);
        /* the right leaf in the wrong section: "kafka.dsn" -> ... only
         * when the leaf is a close match and unique enough */
        if (klast) {
            const char *last = strrchr(k->name, '.');
            size_t slen = (size_t)(klast - key);
            if (last && (size_t)(last - k->name) == slen &&
                !strncmp(k->name, key, slen)) {
                int ld = osa_distance(klast + 1, last + 1);
                if (ld < dist)
                    dist = ld;
            }
        }
        if (dist < bestd) {
            bestd = dist;
            best = k->name;
        }
    }
    /* a section name alone: "msql" -> "mysql" */
    if (!klast) {
        static char sec[64];
        for (const cdc_conf_key_t *k = cdc_conf_keys; k->name; k++) {
            char first[64];
            size_t l = strcspn(k->name, ".");
            int dist;
            if (!k->name[l] || l >= sizeof(first))
                continue;
            snprintf(first, sizeof(first), "%.*s", (int)l, k->name);
            dist = osa_distance(key, first);
            if (dist < bestd) {
                bestd = dist;
                snprintf(sec, sizeof(sec), "%s", first);
                best = sec;
            }
        }
    }
    /* close enough: a third of the name, at least 1, at most 3 edits */
    {
        int lim = (int)strlen(key) / 3;
        lim = lim < 1 ? 1 : lim > 3 ? 3 : lim;
        return bestd <= lim ? best : NULL;
    }
}

int cdc_conf_key_unknown(const char *key, const char *where, cdc_err_t *err)
{
    const char *s = cdc_conf_key_suggest(key);

    cdc_err_set(err, CDC_EXIT_CONFIG, 0, "%s%sunknown configuration key '%s'",
                where ? where : "", where ? ": " : "", key);
    if (s)
        cdc_err_hint(err, "did you mean '%s'? (autoglm-cdc config "
                     "--reference lists every key)", s);
    else
        cdc_err_hint(err, "autoglm-cdc config --reference lists every key; "
                     "kafka.<property> passes a librdkafka property");
    return -1;
}

/* ---- values ------------------------------------------------------------ */

static int bad_value(const char *key, const char *where, const char *val,
                     cdc_err_t *err, const char *what)
{
    cdc_err_set(err, CDC_EXIT_CONFIG, 0, "%s%s%s: '%s' is not %s",
                where ? where : "", where ? ": " : "", key,
                cdc_conf_is_secret(key) ? "******" : val, what);
    return -1;
}

int cdc_conf_key_check(const cdc_conf_key_t *k, const char *key,
                       const char *val, const char *where, cdc_err_t *err)
{
    cdc_conf_t *one;
    int rc = 0;

    switch (k->type) {
    case CDC_KT_INT: {
        char *end;
        long long n;
        errno = 0;
        n = strtoll(val, &end, 10);
        if (!*val || errno || *end) {
            bad_value(key, where, val, err, "a whole number");
            cdc_err_hint(err, "set %s to a whole number from %" PRId64
                         " to %" PRId64, key, k->min, k->max);
            return -1;
        }
        if (n < k->min || n > k->max) {
            cdc_err_set(err, CDC_EXIT_CONFIG, 0,
                        "%s%s%s = %lld is out of range", where ? where : "",
                        where ? ": " : "", key, n);
            cdc_err_hint(err, "use a value from %" PRId64 " to %" PRId64,
                         k->min, k->max);
            return -1;
        }
        return 0;
    }
    case CDC_KT_ENUM: {
        const char *p = k->allowed;
        size_t n = strlen(val);
        while (p && *p) {
            size_t l = strcspn(p, "|");
            if (l == n && !strncmp(p, val, n))
                return 0;
            p += l + (p[l] == '|');
        }
        bad_value(key, where, val, err, "allowed");
        cdc_err_hint(err, "use one of: %s", k->allowed);
        return -1;
    }
    case CDC_KT_NAME:
        if (!*val || strchr(val, '/') || strstr(val, "..")) {
            bad_value(key, where, val, err, "a valid name");
            cdc_err_hint(err, "%s names files under state.dir: no '/', no "
                         "'..', not empty", key);
            return -1;
        }
        return 0;
    case CDC_KT_CONNINFO:
    case CDC_KT_NAMESPACE:
        /* the format is the plugin's (its library's parser decides) */
        if (!*val && k->type == CDC_KT_CONNINFO)
            return 0;
        return cdc_plugin_check_value(k->type, key, val, where, err);
    case CDC_KT_BOOL:
    case CDC_KT_DURATION:
        /* the getters know these formats: ask them */
        one = cdc_conf_new();
        cdc_conf_set(one, key, val, where);
        if (k->type == CDC_KT_BOOL) {
            int b;
            rc = cdc_conf_get_bool(one, key, 0, &b, err);
        } else {
            int64_t us;
            rc = cdc_conf_get_duration(one, key, NULL, k->min > 0, NULL, &us,
                                       err);
        }
        if (rc && where && strncmp(err->msg, where, strlen(where))) {
            cdc_buf_t m = CDC_BUF_INIT;
            cdc_buf_printf(&m, "%s: %s", where, err->msg);
            snprintf(err->msg, sizeof(err->msg), "%s", m.p);
            cdc_buf_free(&m);
        }
        cdc_conf_destroy(one);
        return rc;
    default:
        return 0;
    }
}

/* ---- resolution -------------------------------------------------------- */

static int is_file_key(const char *key)
{
    size_t n = strlen(key);
    return n > 5 && !strcmp(key + n - 5, "_file");
}

static const char *where_text(const char *where)
{
    return !where ? NULL : !strcmp(where, "cli") ? "command line" : where;
}

static int layer_rank(const char *where)
{
    if (!where)
        return 0;
    if (!strcmp(where, "cli"))
        return 3;
    if (!strncmp(where, "env", 3))
        return 2;
    if (!strcmp(where, "default"))
        return 0;
    return 1; /* a file position */
}

/* K_file: read the secret; the later (higher) layer of K and K_file wins. */
static void resolve_file(cdc_conf_t *conf, int i)
{
    const cdc_conf_ent_t *fe = &conf->ents[i];
    size_t n = strlen(fe->key) - 5;
    char *base = cdc_xstrdup(fe->key);
    char *where = NULL, *path = cdc_xstrdup(fe->val), *fe_key, *fe_where;
    const char *bw;
    FILE *fp;

    base[n] = '\0';
    fe_key = cdc_xstrdup(fe->key);
    fe_where = cdc_xstrdup(fe->where ? where_text(fe->where) : "?");
    bw = cdc_conf_where(conf, base);
    if (cdc_conf_get(conf, base, NULL) && layer_rank(bw) > layer_rank(fe->where))
        goto out;
    {
        cdc_buf_t w = CDC_BUF_INIT;
        cdc_buf_printf(&w, "%s (%s)", fe->where ? where_text(fe->where) : "?",
                       fe->key);
        where = w.p;
    }
    fp = fe->unresolved ? NULL : fopen(path, "rb");
    if (!fp) {
        cdc_buf_t m = CDC_BUF_INIT;
        if (fe->unresolved)
            cdc_buf_puts(&m, fe->unresolved);
        else
            cdc_buf_printf(&m, "%s: cannot read the file %s (%s) given as "
                           "%s", fe_where, path, strerror(errno), fe_key);
        cdc_conf_set(conf, base, "", where);
        for (int j = 0; j < conf->n; j++)
            if (!strcmp(conf->ents[j].key, base)) {
                free(conf->ents[j].unresolved);
                conf->ents[j].unresolved = m.p;
            }
    } else {
        cdc_buf_t v = CDC_BUF_INIT;
        char chunk[4096];
        size_t got;
        cdc_buf_puts(&v, "");
        while ((got = fread(chunk, 1, sizeof(chunk), fp)) > 0 &&
               v.len < (1u << 20))
            cdc_buf_put(&v, chunk, got);
        fclose(fp);
        /* one trailing newline (echo, systemd-creds) is not the secret */
        if (v.len && v.p[v.len - 1] == '\n')
            v.p[--v.len] = '\0';
        if (v.len && v.p[v.len - 1] == '\r')
            v.p[--v.len] = '\0';
        cdc_conf_set(conf, base, v.p, where);
        cdc_buf_free(&v);
    }
out:
    free(base);
    free(where);
    free(path);
    free(fe_key);
    free(fe_where);
}

int cdc_conf_resolve(cdc_conf_t *conf, cdc_err_t *err)
{
    /* index loop: resolve_file may append entries */
    for (int i = 0; i < conf->n; i++) {
        const char *key = conf->ents[i].key, *base = NULL;
        const cdc_conf_key_t *k = cdc_conf_key_find(key, &base);

        if (!k)
            return cdc_conf_key_unknown(key, where_text(conf->ents[i].where),
                                        err);
        if (is_file_key(key) && (base || k->type == CDC_KT_NAMESPACE)) {
            char b[256];
            snprintf(b, sizeof(b), "%.*s", (int)(strlen(key) - 5), key);
            if (base || cdc_conf_is_secret(b))
                resolve_file(conf, i);
        }
    }
    /* the K_file entries have done their job: no reader (librdkafka
     * least of all) must see them */
    for (int i = 0, j = 0; i < conf->n; i++) {
        cdc_conf_ent_t *e = &conf->ents[i];
        const char *base = NULL;
        const cdc_conf_key_t *k = cdc_conf_key_find(e->key, &base);
        char b[256];
        snprintf(b, sizeof(b), "%.*s", (int)strlen(e->key) - 5, e->key);
        if (is_file_key(e->key) &&
            (base || (k->type == CDC_KT_NAMESPACE && cdc_conf_is_secret(b)))) {
            free(e->key);
            free(e->val);
            free(e->where);
            free(e->unresolved);
        } else
            conf->ents[j++] = *e;
        if (i == conf->n - 1)
            conf->n = j;
    }
    for (int i = 0; i < conf->n; i++) {
        const cdc_conf_ent_t *e = &conf->ents[i];
        const cdc_conf_key_t *k = cdc_conf_key_find(e->key, NULL);
        const char *where = where_text(e->where);
        if (e->unresolved || !k || is_file_key(e->key))
            continue;
        if (cdc_conf_key_check(k, e->key, e->val, where, err))
            return -1;
    }
    return 0;
}

int cdc_conf_need_resolved(const cdc_conf_t *conf, const char *const *keys,
                           cdc_err_t *err)
{
    for (int i = 0; i < conf->n; i++) {
        const cdc_conf_ent_t *e = &conf->ents[i];
        int wanted = !keys;
        for (int j = 0; keys && keys[j] && !wanted; j++)
            wanted = !strcmp(keys[j], e->key);
        if (!wanted || !e->unresolved)
            continue;
        cdc_err_set(err, CDC_EXIT_CONFIG, 0, "%s", e->unresolved);
        cdc_err_hint(err, "export the variable, write ${VAR:default}, or "
                     "make the file readable");
        return -1;
    }
    return 0;
}

const char *cdc_conf_pipeline(const cdc_conf_t *conf)
{
    const char *v = cdc_conf_get(conf, "pipeline.name", NULL);

    if (v && *v)
        return v;
    v = cdc_conf_get(conf, "source.type", NULL);
    return v && *v ? v : "cdc";
}

const char *cdc_conf_app_id(const cdc_conf_t *conf)
{
    const char *v = cdc_conf_get(conf, "application_id", NULL);
    return v && *v ? v : cdc_conf_pipeline(conf);
}

/* ---- docs/CONFIG.md ---------------------------------------------------- */

static void md_cell(FILE *fp, const char *s)
{
    for (; s && *s; s++) {
        if (*s == '|')
            fputs("\\|", fp);
        else
            fputc(*s, fp);
    }
}

void cdc_conf_reference(void *fpv)
{
    FILE *fp = fpv;
    const char *section = "";

    fputs("<!-- SPDX-License-Identifier: Apache-2.0 -->\n"
          "<!-- Generated by `autoglm-cdc config --reference` from "
          "cdc/conf_keys.c; do not edit. -->\n"
          "# Configuration reference\n\n"
          "Every key can be set in the YAML file given with `-c` (nested: "
          "`mysql: {dsn: ...}` is `mysql.dsn`),\n"
          "as an environment variable `AUTOGLM_CDC_<KEY>` (upper case, dots "
          "and underscores as `_`: `AUTOGLM_CDC_MYSQL_SERVER_ID`),\n"
          "with `-X key=value`, or with the option shown. Precedence: "
          "default < YAML < environment < command line.\n\n"
          "- An unknown key, a duplicate key, a wrong type or a value out of "
          "bounds stops every command with exit 78,\n"
          "  naming the key and where it was set (`file:line:column`, "
          "`env AUTOGLM_CDC_...`, `command line`).\n"
          "- YAML values may use `${VAR}` and `${VAR:default}`; `${{...}}` is "
          "a literal `${...}`. A variable that is\n"
          "  not set is an error only for a command that needs the key "
          "(`status` runs without the database secrets).\n"
          "- A secret key `K` may also be given as `K_file` (e.g. "
          "`mysql.password_file`, `postgres.dsn_file`): the file's\n"
          "  content, without one trailing newline, is the value (systemd "
          "credentials, Kubernetes secrets).\n"
          "- Secrets are never printed (`config`, logs, `/status`).\n"
          "- Types: integer (bounds as min..max), boolean "
          "(true/false/yes/no/on/off/1/0), duration (`30s`, `5m`, `1d12h`),\n"
          "  list (comma-separated, or a YAML sequence), name (no `/`, no "
          "`..`), conninfo (checked by libpq's parser).\n", fp);
    for (const cdc_conf_key_t *k = cdc_conf_keys; k->name; k++) {
        size_t sl = strcspn(k->name, ".");
        char sec[64];
        snprintf(sec, sizeof(sec), "%.*s", (int)sl, k->name);
        if (!k->name[sl])
            snprintf(sec, sizeof(sec), "general");
        if (!strcmp(sec, "pipeline") || !strcmp(sec, "source") ||
            !strcmp(sec, "sink") || !strcmp(sec, "state") ||
            !strcmp(sec, "checkpoint") || !strcmp(sec, "run") ||
            !strcmp(sec, "filter") || !strcmp(sec, "mapping") ||
            !strcmp(sec, "log") || !strcmp(sec, "decode"))
            snprintf(sec, sizeof(sec), "general");
        if (!strcmp(sec, "ready") || !strcmp(sec, "metrics") ||
            !strcmp(sec, "status"))
            snprintf(sec, sizeof(sec), "http");
        if (strcmp(sec, section)) {
            static char cur[64];
            snprintf(cur, sizeof(cur), "%s", sec);
            section = cur;
            fprintf(fp, "\n## %s\n\n", sec);
            fputs("| Key | Type | Default | Allowed | Option | Read by | "
                  "Description |\n|---|---|---|---|---|---|---|\n", fp);
        }
        fprintf(fp, "| `%s`%s | %s | ", k->name,
                (k->flags & CDC_KF_SECRET) ? " (secret)" : "",
                ktype_name[k->type]);
        if (k->def) {
            fputc('`', fp);
            md_cell(fp, k->def);
            fputc('`', fp);
        }
        fputs(" | ", fp);
        if (k->type == CDC_KT_INT) {
            if (k->max == I64MAX)
                fprintf(fp, "≥ %" PRId64, k->min);
            else
                fprintf(fp, "%" PRId64 "..%" PRId64, k->min, k->max);
        } else if (k->type == CDC_KT_ENUM) {
            md_cell(fp, k->allowed);
        } else if (k->type == CDC_KT_DURATION && k->min > 0) {
            fprintf(fp, "≥ %" PRId64 "s", k->min / 1000000);
        }
        fputs(" | ", fp);
        if (k->opt) {
            fputc('`', fp);
            md_cell(fp, k->opt);
            fputc('`', fp);
        }
        fputs(" | ", fp);
        md_cell(fp, k->comps);
        fputs(" | ", fp);
        md_cell(fp, k->doc);
        fputs(" |\n", fp);
    }
}
