#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# t_ops_endpoints.sh - the operational HTTP endpoint against a running
# pipeline: /livez, /readyz, /status, /metrics (scraped and parsed), the
# bearer token, `autoglm-cdc status` (live and from the checkpoint), lag and
# readiness while the source goes offline (SIGSTOP of our own MariaDB) and
# comes back, JSON logs, and no secret in any output.
#
# Starts its own throwaway mariadbd on a free loopback port (the shared
# servers are never stopped); uses the shared Kafka when it answers, else
# the file sink.
#   CDC_BUILD=/work/build-x bash tests/integ/t_ops_endpoints.sh
. "$(dirname "$0")/lib.sh"
need cdc
MARIADBD=$(command -v mariadbd || echo /usr/sbin/mariadbd)
[ -x "$MARIADBD" ] && command -v mariadb-install-db >/dev/null || skip "no mariadbd"
need curl

freeport() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

# --- our own MariaDB ------------------------------------------------------
D=$T/db
PORT=$(freeport)
mariadb-install-db --no-defaults --datadir="$D" --auth-root-authentication-method=normal \
    --skip-test-db >"$T/install.log" 2>&1 || { tail "$T/install.log" >&2; fail "mariadb-install-db failed"; }
"$MARIADBD" --no-defaults --user="$(id -un)" --datadir="$D" --port="$PORT" --bind-address=127.0.0.1 \
    --socket="$T/my.sock" --pid-file="$T/my.pid" --log-error="$T/my.err" \
    --log-bin=mysql-bin --binlog-format=ROW --binlog-row-image=FULL --binlog-row-metadata=FULL \
    --server-id=1 --innodb-buffer-pool-size=16M </dev/null >/dev/null 2>&1 &
dbpid=$!
cdcpid=
cleanup() {
    local rc=$?
    kill -CONT $dbpid 2>/dev/null
    [ -n "$cdcpid" ] && kill -TERM "$cdcpid" 2>/dev/null && wait "$cdcpid" 2>/dev/null
    kill -TERM $dbpid 2>/dev/null
    wait $dbpid 2>/dev/null
    (exit $rc)
    _cdc_cleanup
}
trap cleanup EXIT
tsql() { mariadb --no-defaults --protocol=tcp -h 127.0.0.1 -P "$PORT" -u root -N -B -e "$1"; }
wait_for 60 "our MariaDB answers" tsql "SELECT 1"

# distinctive secrets: none of them may appear in any output
DBPW='Pw-9f3kQz7'
TOKEN='tok-Xq81bZv6'
tsql "CREATE USER cdc@'%' IDENTIFIED BY '$DBPW'; GRANT REPLICATION SLAVE, REPLICATION CLIENT, BINLOG MONITOR, SELECT ON *.* TO cdc@'%';
      CREATE DATABASE opsdb; CREATE TABLE opsdb.t (id INT PRIMARY KEY, v INT); CREATE TABLE opsdb.u (id INT PRIMARY KEY)"

HPORT=$(freeport)
TOPIC="ops_endpoints_$$"
if [ -n "${KAFKA_BOOTSTRAP:-}" ] && kcat -b "$KAFKA_BOOTSTRAP" -L -m 5 >/dev/null 2>&1; then
    SINK="sink: {type: kafka}
kafka: {brokers: \"$KAFKA_BOOTSTRAP\", topic: \"$TOPIC.{table}\"}"
    SINKTYPE=kafka
else
    SINK="sink: {type: file}
output: $T/out.jsonl"
    SINKTYPE=file
fi
cat >"$T/pipeline.yaml" <<EOF
pipeline: {name: opsp}
application_id: ops-app
source: {type: mysql}
mysql:
  dsn: "mysql://cdc:$DBPW@127.0.0.1:$PORT"
  from: now
  server_id: 7701
  heartbeat_ms: 500
  connect_timeout_ms: 1000
  # hand lost connections to the pipeline, so its state shows them
  reconnect: false
$SINK
state: {dir: "$T/state"}
checkpoint: {interval_ms: 200}
http: {listen: "127.0.0.1:$HPORT", token: "$TOKEN"}
ready: {max_lag_s: 4, sink_stall_s: 30}
EOF
log "sink: $SINKTYPE; endpoint 127.0.0.1:$HPORT"

"$CDC" run -c "$T/pipeline.yaml" --log-format json >"$T/run.out" 2>"$T/run.log" &
cdcpid=$!

H="http://127.0.0.1:$HPORT"
AUTH="Authorization: Bearer $TOKEN"
code() { curl -s -o "$T/body" -w '%{http_code}' "$@"; }
ready_is() { [ "$(code "$H/readyz")" = "$1" ]; }
metric() { # metric 'NAME{labels}' -> value
    curl -sf -H "$AUTH" "$H/metrics" | awk -v m="$1" '$1 == m { print $2 }'
}
status_field() { curl -sf -H "$AUTH" "$H/status" | python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
keep() { # keep NAME: save an output for the secret scan
    cp "$T/body" "$T/seen.$1"
}

wait_for 30 "/livez answers" curl -sf "$H/livez"
[ "$(code "$H/livez")" = 200 ] || fail "/livez is not 200"
wait_for 30 "/readyz 200" ready_is 200
keep readyz1

# --- auth -----------------------------------------------------------------
[ "$(code "$H/metrics")" = 401 ] || fail "/metrics without a token is not 401"
[ "$(code -H "Authorization: Bearer wrong" "$H/status")" = 401 ] || fail "/status with a wrong token is not 401"
[ "$(code -X POST -H "$AUTH" "$H/status")" = 405 ] || fail "POST is not 405"

# --- changes flow: events per table and op, lag, status -------------------
tsql "INSERT INTO opsdb.t VALUES (1,1),(2,2),(3,3); UPDATE opsdb.t SET v=9 WHERE id=2; DELETE FROM opsdb.t WHERE id=3; INSERT INTO opsdb.u VALUES (1)"
events_are() { [ "$(metric "$1")" = "$2" ]; }
wait_for 30 "3 inserts counted" events_are 'autoglm_cdc_source_events_total{table="opsdb.t",op="c"}' 3
events_are 'autoglm_cdc_source_events_total{table="opsdb.t",op="u"}' 1 || fail "update not counted"
events_are 'autoglm_cdc_source_events_total{table="opsdb.t",op="d"}' 1 || fail "delete not counted"
events_are 'autoglm_cdc_source_events_total{table="opsdb.u",op="c"}' 1 || fail "opsdb.u insert not counted"

# scrape and parse the whole exposition
[ "$(code -H "$AUTH" "$H/metrics")" = 200 ] || fail "/metrics with the token is not 200"
keep metrics1
python3 - "$T/body" "$SINKTYPE" <<'EOF' || fail "/metrics does not parse"
import re, sys
text = open(sys.argv[1]).read()
sink = sys.argv[2]
fam_type, samples = {}, {}
line_re = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})? (-?[0-9.eE+-]+|NaN|\+Inf|-Inf)$')
for ln in text.splitlines():
    if ln.startswith('# TYPE '):
        _, _, name, typ = ln.split(' ', 3)
        assert typ in ('counter', 'gauge'), ln
        fam_type[name] = typ
        continue
    if ln.startswith('# HELP ') or not ln:
        continue
    m = line_re.match(ln)
    assert m, 'bad line: %r' % ln
    name = m.group(1)
    assert name.startswith('autoglm_cdc_'), name
    assert name in fam_type, 'no TYPE for ' + name
    labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or ''))
    samples.setdefault(name, []).append((labels, float(m.group(4))))
need = ['autoglm_cdc_build_info', 'autoglm_cdc_source_events_total', 'autoglm_cdc_lag_seconds',
        'autoglm_cdc_checkpoint_age_seconds', 'autoglm_cdc_connected', 'autoglm_cdc_reconnects_total',
        'autoglm_cdc_queue_bytes', 'autoglm_cdc_queue_transactions', 'autoglm_cdc_ready',
        'autoglm_cdc_latency_seconds']
if sink == 'kafka':
    need.append('autoglm_cdc_kafka_inflight_messages')
for n in need:
    assert n in samples, 'missing ' + n
assert samples['autoglm_cdc_build_info'][0][0]['version'], 'no version label'
assert fam_type['autoglm_cdc_source_events_total'] == 'counter'
con = {l['component']: v for l, v in samples['autoglm_cdc_connected']}
assert con == {'source': 1.0, 'sink': 1.0}, con
assert samples['autoglm_cdc_checkpoint_age_seconds'][0][1] < 30
print('# metrics parsed: %d families, %d samples' % (len(fam_type), sum(map(len, samples.values()))))
EOF

caught_up() { [ "$(status_field "['caught_up']")" = True ]; }
wait_for 20 "caught up" caught_up
[ "$(status_field "['lag_seconds']")" = 0.0 ] || fail "lag is not 0 when caught up"
# caught up means the source has read to the end; the checkpoint follows once
# Kafka acknowledges the in-flight messages
checkpoint_stored() { status_field "['checkpoint']['position']" | grep -q 'mysql-bin\.'; }
wait_for 20 "checkpoint stored after the Kafka acknowledgements" checkpoint_stored
curl -sf -H "$AUTH" "$H/status" >"$T/body" && keep status1
python3 - "$T/body" <<'EOF' || fail "/status document"
import json, sys
s = json.load(open(sys.argv[1]))
assert s['application'] == 'ops-app', s
assert s['status'] == 'online' and s['connected'] is True, s
assert s['source']['type'] == 'mysql' and s['source']['connected'], s
assert s['last_sync_time'] and s['last_sync_time'].endswith('Z'), s
assert isinstance(s['latency_ms'], int) and 0 <= s['latency_ms'] < 10000, s
assert 'mysql-bin.' in s['checkpoint']['position'], s
assert s['ready'] is True and s['reasons'] == [], s
EOF

# the status command against the running daemon
"$CDC" status -c "$T/pipeline.yaml" >"$T/seen.status_live" 2>&1 || { cat "$T/seen.status_live" >&2; fail "status (live) failed"; }
cat "$T/seen.status_live" >&2
grep -Eq '^ops-app +opsp +online +20[0-9-]+T[0-9:.]+Z +[0-9]+ ms' "$T/seen.status_live" || fail "status table does not show ops-app online"
"$CDC" status --url "$H" -X http.token="$TOKEN" -X status.format=json --state-dir "$T/none" >"$T/seen.status_json" \
    || fail "status --url failed"
python3 -c "import json,sys; r=json.load(open(sys.argv[1])); assert r[0]['status']=='online' and r[0]['latency_ms'] is not None, r" \
    "$T/seen.status_json" || fail "status --url json"

# --- source offline: SIGSTOP our MariaDB -----------------------------------
log "stopping our MariaDB (SIGSTOP)"
kill -STOP $dbpid
wait_for 30 "/readyz 503 while the source is offline" ready_is 503
keep readyz_offline
grep -q 'source mysql disconnected' "$T/body" || { cat "$T/body" >&2; fail "readyz reasons do not name the source"; }
python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert d['ready'] is False and d['reasons'], d" "$T/body" \
    || fail "readyz 503 body is not the JSON list of reasons"
[ "$(status_field "['status']")" = offline ] || fail "/status is not offline"
[ "$(metric 'autoglm_cdc_connected{component="source",type="mysql"}')" = 0 ] || fail "source connected gauge is not 0"
lag_above() { python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) > float(sys.argv[2]) else 1)" "$(metric autoglm_cdc_lag_seconds)" "$1"; }
wait_for 30 "lag grows while offline" lag_above 5
curl -s "$H/readyz" >"$T/body"; keep readyz_lag
grep -q 'above ready.max_lag_s=4' "$T/body" || { cat "$T/body" >&2; fail "readyz does not report the lag"; }
"$CDC" status -c "$T/pipeline.yaml" >"$T/seen.status_offline_live" 2>&1
grep -Eq '^ops-app +opsp +offline' "$T/seen.status_offline_live" || { cat "$T/seen.status_offline_live" >&2; fail "status table does not show offline"; }
curl -sf -H "$AUTH" "$H/status" >"$T/body" && keep status_offline

# --- back online -----------------------------------------------------------
log "resuming our MariaDB (SIGCONT)"
kill -CONT $dbpid
wait_for 60 "/readyz 200 after the source is back" ready_is 200
[ "$(status_field "['status']")" = online ] || fail "/status is not online again"
rc=$(metric autoglm_cdc_reconnects_total)
[ "${rc:-0}" -ge 1 ] || fail "reconnects_total is $rc"
tsql "INSERT INTO opsdb.t VALUES (4,4)"
wait_for 30 "the insert after the outage is counted" events_are 'autoglm_cdc_source_events_total{table="opsdb.t",op="c"}' 4
wait_for 20 "caught up again" caught_up
[ "$(status_field "['lag_seconds']")" = 0.0 ] || fail "lag is not 0 after catching up"
curl -s "$H/readyz" >"$T/body"; keep readyz_end
curl -sf -H "$AUTH" "$H/metrics" >"$T/body"; keep metrics_end
curl -sf -H "$AUTH" "$H/status" >"$T/body"; keep status_end

# --- stop: status from the checkpoint file ---------------------------------
kill -TERM $cdcpid
wait $cdcpid
rc=$?
cdcpid=
[ $rc = 0 ] || { tail "$T/run.log" >&2; fail "pipeline exit $rc after SIGTERM"; }
"$CDC" status -c "$T/pipeline.yaml" >"$T/seen.status_ckpt" 2>&1
cat "$T/seen.status_ckpt" >&2
grep -Eq '^ops-app +opsp +offline +20[0-9-]+T[0-9:.]+Z' "$T/seen.status_ckpt" || fail "status from the checkpoint"

# --- logs are JSON lines; no secret anywhere --------------------------------
# ... and they tell the story: the start, and the outage as a warning
python3 - "$T/run.log" <<'EOF' || fail "log is not JSON lines, or lacks the start or the outage"
import json, sys
recs = [json.loads(ln) for ln in open(sys.argv[1])]
for d in recs:
    assert {'ts', 'level', 'msg'} <= d.keys(), d
assert len(recs) > 3, recs
assert any("source mysql started" in d["msg"] for d in recs), "no 'source mysql started'"
assert any(d["level"] == "warn" and "reconnecting" in d["msg"] for d in recs), \
    "no warning 'reconnecting' for the outage: %s" % [d["msg"] for d in recs]
EOF
"$CDC" config -c "$T/pipeline.yaml" >"$T/seen.config" 2>&1 || fail "config dump failed"
grep -q 'http.token = \*\*\*\*\*\*' "$T/seen.config" || { cat "$T/seen.config" >&2; fail "config dump does not mask http.token"; }
"$CDC" --help >"$T/seen.help" 2>&1
cp "$T/run.log" "$T/seen.run.log"
cp "$T/run.out" "$T/seen.run.out"
if grep -l -e "$DBPW" -e "$TOKEN" "$T"/seen.*; then
    grep -n -e "$DBPW" -e "$TOKEN" "$T"/seen.* >&2
    fail "a secret appears in the output above"
fi
log "checked $(ls "$T"/seen.* | wc -l) outputs for secrets"
log "endpoints ok"
