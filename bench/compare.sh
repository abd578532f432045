#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# bench/compare.sh - regression check of one build against another: the
# paths `make bench` measures, each run through OLD and NEW alternately
# (old, new, old, new, ...) on the same servers and the same data, which is
# generated once per path.  Prints each run's figure, then a table: the
# medians of OLD and of NEW, NEW/OLD as the median of the pairs' ratios (a
# pair runs under the same load), their spread (lowest..highest), the
# run-to-run noise of each build and a verdict: WORSE or better only when
# the ratio is off by more than 10%, more than that noise, and every pair
# agrees.
#
# Usage: bench/compare.sh OLD_BUILD NEW_BUILD [PATH...]
#        bench/compare.sh --report RUNS-FILE...   (the table again, from
#                         the per-run figures of COMPARE_OUT files)
#   OLD_BUILD, NEW_BUILD  build directories (each with its autoglm-cdc;
#                         bench/envelope_bench and bench/map_pg_bench are
#                         made there when missing)
#   PATH   envelope decode kafka debezium latency backfill pg bigtxn map_pg
#          (default: all of them)
# Environment: COMPARE_PAIRS (3; envelope runs 2x as many), COMPARE_TXNS
# (1000 transactions of 1,000 row changes for decode, kafka, debezium, pg),
# COMPARE_BF_ROWS (1000000), COMPARE_BIGTXN_ROWS (500000),
# COMPARE_BIGTXN_SINKS ("file kafka"), COMPARE_BIGTXN_SOURCES ("mysql pg"),
# COMPARE_MAP_CHANGES (1000000), COMPARE_OUT (a file that keeps the
# per-run figures, for --report).
# The servers are those of tests/services.sh in this source tree (started
# when missing).  Not part of `make check`: numbers, not pass/fail, though
# the exit status is 1 when a run failed or delivered the wrong count.
set -eu
[ -n "${BENCH_DEBUG:-}" ] && set -x
SRC=$(cd "$(dirname "$0")/.." && pwd)
usage() { sed -n '/^# Usage/,/^# Environment/p' "$0" | sed 's/^# \{0,1\}//' | sed '$d' >&2; exit 2; }
# summary FILE...: the table of NEW/OLD from per-run figures (the pairs of
# several files are numbered on)
summary() {
    local all
    all=$(mktemp)
    awk -F'|' 'FNR == 1 { base = top } { $4 += base; if ($4 > top) top = $4; print }' OFS='|' "$@" >"$all"
    set -- "$all"
    echo "== OLD, NEW: medians of the runs; NEW/OLD: median of the pairs' ratios; spread: lowest..highest of them; noise: (max-min)/median of each build's runs"
    awk -F'|' '
    function med(a, n,   i, j, t) {
        for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
        return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    { k = $1 "|" $2; if (!(k in seen)) { seen[k] = 1; order[++nk] = k }
      v[k, $3, $4] = $5; if ($4 > np[k]) np[k] = $4 }
    END {
      printf "| %-28s | %-13s | %11s | %11s | %7s | %-13s | %-15s | %s |\n", "path", "figure", "OLD", "NEW", "NEW/OLD", "pair spread", "noise OLD/NEW", "verdict"
      print "|---|---|--:|--:|--:|---|---|---|"
      for (q = 1; q <= nk; q++) {
        k = order[q]; split(k, kk, "|"); m = kk[2]; better = substr(m, length(m)); m = substr(m, 1, length(m) - 1)
        no = nn = npr = 0; lo = 1e18; hi = -1e18
        omin = nmin = 1e18; omax = nmax = -1e18
        for (i = 1; i <= np[k]; i++) {
          if ((k, "OLD", i) in v) { o[++no] = v[k, "OLD", i]; if (o[no] < omin) omin = o[no]; if (o[no] > omax) omax = o[no] }
          if ((k, "NEW", i) in v) { n[++nn] = v[k, "NEW", i]; if (n[nn] < nmin) nmin = n[nn]; if (n[nn] > nmax) nmax = n[nn] }
          if (((k, "OLD", i) in v) && ((k, "NEW", i) in v) && v[k, "OLD", i] > 0) {
            r = v[k, "NEW", i] / v[k, "OLD", i]; pr[++npr] = r; if (r < lo) lo = r; if (r > hi) hi = r }
        }
        if (!no || !nn) continue
        mo = med(o, no); mn = med(n, nn)
        if (mo <= 0 || lo > hi) {   # (a latency at or below the clock resolution)
          printf "| %-28s | %-13s | %11.2f | %11.2f | %7s | %-13s | %-15s | %s |\n", kk[1], m, mo, mn, "-", "-", "-", "no ratio"
          continue
        }
        # the pairs ran under the same load: the median of their ratios
        ratio = med(pr, npr)
        noise = mo > 0 ? (omax - omin) / mo : 0; noisen = mn > 0 ? (nmax - nmin) / mn : 0
        nz = noise > noisen ? noise : noisen
        # worse beyond noise: more than 10% and more than the runs of either build spread
        if (better == "+") worse = ratio < 0.9 && (1 - ratio) > nz && hi < 1
        else worse = ratio > 1.1 && (ratio - 1) > nz && lo > 1
        if (better == "+") gain = ratio > 1.1 && (ratio - 1) > nz && lo > 1
        else gain = ratio < 0.9 && (1 - ratio) > nz && hi < 1
        verdict = worse ? "WORSE" : gain ? "better" : "same (noise)"
        mo = mo >= 1000 ? sprintf("%.0f", mo) : sprintf("%.2f", mo)
        mn = mn >= 1000 ? sprintf("%.0f", mn) : sprintf("%.2f", mn)
        printf "| %-28s | %-13s | %11s | %11s | %7.2f | %5.2f..%-5.2f | %6.0f%% / %3.0f%% | %s |\n", kk[1], m, mo, mn, ratio, lo, hi, noise * 100, noisen * 100, verdict
      }
    }' "$@"
    rm -f "$all"
}
if [ "${1:-}" = --report ]; then   # bench/compare.sh --report RUNS-FILE...
    shift
    [ $# -ge 1 ] || usage
    summary "$@"
    exit 0
fi
[ $# -ge 2 ] || usage
OLD=$(cd "$1" && pwd) NEW=$(cd "$2" && pwd)
shift 2
for b in "$OLD" "$NEW"; do
    [ -x "$b/autoglm-cdc" ] || { echo "compare: no $b/autoglm-cdc (build it first)" >&2; exit 2; }
done
WHAT=${*:-envelope decode kafka debezium latency backfill pg bigtxn map_pg}
PAIRS=${COMPARE_PAIRS:-3}
TXNS=${COMPARE_TXNS:-1000}
BF_ROWS=${COMPARE_BF_ROWS:-1000000}
BIG_ROWS=${COMPARE_BIGTXN_ROWS:-500000}
BIG_SINKS=${COMPARE_BIGTXN_SINKS:-file kafka}
BIG_SOURCES=${COMPARE_BIGTXN_SOURCES:-mysql pg}
MAP_N=${COMPARE_MAP_CHANGES:-1000000}
for p in $WHAT; do
    case $p in
    envelope | decode | kafka | debezium | latency | backfill | pg | bigtxn | map_pg) ;;
    *) echo "compare: unknown path '$p'" >&2; usage ;;
    esac
done

svc=
case " $WHAT " in *" decode "* | *" kafka "* | *" debezium "* | *" latency "* | *" backfill "* | *" bigtxn "*) svc="$svc mariadb" ;; esac
case " $WHAT " in *" pg "* | *" bigtxn "* | *" map_pg "*) svc="$svc postgres" ;; esac
case " $WHAT " in *" kafka "* | *" debezium "* | *" latency "* | *" backfill "* | *" pg "* | *" bigtxn "*) svc="$svc kafka" ;; esac
if [ -n "$svc" ]; then
    "$SRC/tests/services.sh" up $svc >/dev/null
    . "$SRC/tests/services.env"
fi
tmp=$(mktemp -d)
run=$$
OUT=${COMPARE_OUT:-$tmp/runs}
: >"$OUT"
fail=0
my() { mariadb --no-defaults --protocol=tcp -uroot -p"$MYSQL_ROOT_PASSWORD" -h127.0.0.1 -P"$MYSQL_PORT" "$@"; }
su() { PGPASSWORD=$PG_SUPERPASSWORD PGOPTIONS='-c client_min_messages=warning' psql -X -q -At -v ON_ERROR_STOP=1 -h "$PGHOST" -p "$PGPORT" -U "$PG_SUPERUSER" "$@"; }
cleanup() {
    if [ -n "${MYSQL_PORT:-}" ]; then
        my -e "DROP DATABASE IF EXISTS cmp$run" >/dev/null 2>&1 || true
    fi
    if [ -n "${PGPORT:-}" ]; then
        su -d "$PGDATABASE" -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name LIKE 'cmp${run}%'" >/dev/null 2>&1 || true
        su -d "$PGDATABASE" -c "DROP SCHEMA IF EXISTS cmp$run CASCADE; DROP PUBLICATION IF EXISTS cmp$run" >/dev/null 2>&1 || true
        su -d postgres -c "DROP DATABASE IF EXISTS cmp${run}map" >/dev/null 2>&1 || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

# record PATH METRIC BUILD PAIR VALUE; METRIC ends in "+" when more is better
record() {
    echo "$1|$2|$3|$4|$5" >>"$OUT"
    printf '  %-26s %-22s %s #%d  %s\n' "$1" "${2%[+-]}" "$3" "$4" "$5"
}
bad() { echo "  FAILED: $*"; fail=1; }
# timed BUILD-LABEL OUTFILE cmd...: runs cmd with stdout to OUTFILE, sets
# wall user sys rss (kB); returns cmd's status
timed() {
    local out=$2
    shift 2
    /usr/bin/time -f "%e %U %S %M" -o "$tmp/time" "$@" >"$out" 2>"$tmp/err" || {
        tail -3 "$tmp/err" | sed 's/^/    /'
        return 1
    }
    read -r wall user sys rss <"$tmp/time"
}
# counted LABEL cmd...: timed with stdout counted (lines) into $got
counted() {
    local l=$1 c
    shift
    rm -f "$tmp/fifo"
    mkfifo "$tmp/fifo"
    wc -l <"$tmp/fifo" >"$tmp/count" &
    c=$!
    timed "$l" "$tmp/fifo" "$@" || { wait "$c"; return 1; }
    wait "$c"
    got=$(cat "$tmp/count")
}
rate() { awk -v n="$1" -v w="$2" 'BEGIN { printf "%.0f", n / w }'; }
cpu() { awk -v u="$user" -v s="$sys" -v r="$1" 'BEGIN { printf "%.2f", (u + s) * 1e6 / r }'; }
mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
# messages with a value (the Debezium format adds a tombstone after each delete)
kcount() { kcat -b "$KAFKA_BOOTSTRAP" -C -t "$1" -o beginning -e -q -f '%S\n' 2>/dev/null | grep -vc '^-1$'; }
# a topic made before the run, its leader elected: neither build pays for that
ktopic() {
    for _ in $(seq 20); do
        kcat -b "$KAFKA_BOOTSTRAP" -L -t "$1" 2>/dev/null | grep -q "leader 1" && return 0
        sleep 0.5
    done
}
# alternate BODY: BODY BUILD LABEL PAIR for pair 1..PAIRS, old then new
alternate() {
    local i
    for ((i = 1; i <= ${2:-$PAIRS}; i++)); do
        "$1" "$OLD" OLD "$i" || bad "$1 OLD #$i"
        "$1" "$NEW" NEW "$i" || bad "$1 NEW #$i"
    done
}
# the MariaDB workload of bench/gen_orders.py: sets f0 p0 ntx rows
my_workload() {
    my -e "DROP DATABASE IF EXISTS cmp$run; CREATE DATABASE cmp$run"
    my -N -e "FLUSH BINARY LOGS"
    read -r f0 p0 _ < <(my -N -e "SHOW BINLOG STATUS")
    local s0 s1
    s0=$(my -N -e "SELECT @@gtid_binlog_pos" | tr ',' '\n' | grep '^0-' | cut -d- -f3)
    python3 "$SRC/bench/gen_orders.py" "$TXNS" | my "cmp$run"
    s1=$(my -N -e "SELECT @@gtid_binlog_pos" | tr ',' '\n' | grep '^0-' | cut -d- -f3)
    ntx=$((s1 - s0))
    rows=$((TXNS * 1000))
}

# ---- envelope writer -----------------------------------------------------
env_one() {
    [ -x "$1/bench/envelope_bench" ] || make -C "$1" bench/envelope_bench >/dev/null
    local o
    o=$("$1/bench/envelope_bench" 1000000) || return 1
    record envelope "envelopes/s+" "$2" "$3" "$(echo "$o" | awk '{ for (i = 1; i < NF; i++) if ($i == "ours" && $(i + 1) + 0 > 0) { printf "%.0f", 1e9 / $(i + 1); exit } }')"
    record envelope "ours/yajl+" "$2" "$3" "$(echo "$o" | awk '{ for (i = 1; i < NF; i++) if ($i == "is") print substr($(i + 1), 1, length($(i + 1)) - 1) }')"
}

# ---- binlog decode (files, warm page cache) --------------------------------
dec_one() {
    counted "$2" "$1/autoglm-cdc" decode $files || return 1
    [ "$got" = "$rows" ] || { echo "    $got envelopes, want $rows"; return 1; }
    record "decode (files)" "rows/s+" "$2" "$3" "$(rate "$rows" "$wall")"
    record "decode (files)" "cpu s/1M-" "$2" "$3" "$(cpu "$rows")"
    record "decode (files)" "peak RSS MB-" "$2" "$3" "$(mb "$rss")"
}
path_decode() {
    echo "== decode: $((TXNS * 1000)) row changes from binlog files"
    my_workload
    my -N -e "FLUSH BINARY LOGS"
    files=$(my -N -e "SHOW BINARY LOGS" | awk -v f="$f0" '$1 >= f {print $1}' | sed '$d' |
        sed "s|^|$MYSQL_DATADIR/|")
    cat $files >/dev/null
    alternate dec_one
    my -e "DROP DATABASE IF EXISTS cmp$run"
}

# ---- MariaDB catch-up -> Kafka (bench_kafka.sh, bench_peer.sh's run) --------
kafka_one() { # build label pair [format]
    local t="cmp$run$4$2$3" n
    ktopic "$t"
    timed "$2" /dev/null "$1/autoglm-cdc" --source mysql \
        --mysql-dsn "mysql://$MYSQL_USER:$MYSQL_PASSWORD@127.0.0.1:$MYSQL_PORT" --from "$f0:$p0" \
        --include "cmp$run.*" --sink kafka --kafka-brokers "$KAFKA_BOOTSTRAP" --topic "$t" \
        --format "$4" --max-txns "$ntx" --pipeline "k$2$3" --state-dir "$tmp/k$4$2$3" -q || return 1
    n=$(kcount "$t")
    [ "$n" = "$rows" ] || { echo "    $n messages, want $rows"; return 1; }
    record "mysql -> kafka ($4)" "rows/s+" "$2" "$3" "$(rate "$rows" "$wall")"
    record "mysql -> kafka ($4)" "cpu s/1M-" "$2" "$3" "$(cpu "$rows")"
    record "mysql -> kafka ($4)" "peak RSS MB-" "$2" "$3" "$(mb "$rss")"
}
kafka_autoglm() { kafka_one "$1" "$2" "$3" autoglm; }
kafka_debezium() { kafka_one "$1" "$2" "$3" debezium; }

# ---- commit -> Kafka append latency at 2,000 rows/s (bench_kafka.sh part 2) --
lat_one() {
    local t="cmp${run}lat$2$3" cdc
    # the broker stamps each message as it appends it (LogAppendTime)
    java -Xmx256m -cp "$KAFKA_JARS/*" org.apache.kafka.tools.TopicCommand \
        --bootstrap-server "$KAFKA_BOOTSTRAP" --create --topic "$t" --partitions 1 \
        --replication-factor 1 --config message.timestamp.type=LogAppendTime >/dev/null 2>&1 ||
        { echo "    cannot create $t with LogAppendTime (KAFKA_JARS)"; return 1; }
    ktopic "$t"
    my "cmp$run" -e "DROP TABLE IF EXISTS lat; CREATE TABLE lat (id INT PRIMARY KEY, t DATETIME(6))"
    "$1/autoglm-cdc" --source mysql --mysql-dsn "mysql://$MYSQL_USER:$MYSQL_PASSWORD@127.0.0.1:$MYSQL_PORT" \
        --from now --include "cmp$run.lat" --sink kafka --kafka-brokers "$KAFKA_BOOTSTRAP" --topic "$t" \
        -X kafka.linger.ms=1 --pipeline "l$2$3" --state-dir "$tmp/l$2$3" -q 2>"$tmp/err" &
    cdc=$!
    sleep 2
    python3 - "$MYSQL_PORT" "$MYSQL_ROOT_PASSWORD" "cmp$run" <<'PY'
import subprocess, sys, time
p = subprocess.Popen(["mariadb", "--no-defaults", "-uroot", "-p" + sys.argv[2], "-h127.0.0.1",
                      "-P" + sys.argv[1], sys.argv[3]], stdin=subprocess.PIPE, text=True)
t0 = time.time(); i = 0
while time.time() - t0 < 15:
    vals = ",".join("(%d, NOW(6))" % (i + j) for j in range(10))
    p.stdin.write("INSERT INTO lat VALUES %s;\n" % vals); p.stdin.flush()
    i += 10
    time.sleep(max(0, t0 + i / 2000.0 - time.time()))
p.stdin.close(); p.wait()
PY
    sleep 2
    kill "$cdc"
    wait "$cdc" || true
    # latency = the message's Kafka append time - the row's NOW(6)
    kcat -b "$KAFKA_BOOTSTRAP" -C -t "$t" -o beginning -e -q -f '%T %s\n' >"$tmp/lat"
    python3 - "$tmp/lat" >"$tmp/latq" <<'PY' || return 1
import json, sys, datetime
lat = []
for line in open(sys.argv[1]):
    ts, js = line.split(" ", 1)
    t = json.loads(js)["payload"]["after"]["t"]
    dt = datetime.datetime.strptime(t, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=datetime.timezone.utc)
    lat.append(int(ts) - dt.timestamp() * 1000)
lat.sort()
if len(lat) < 25000:
    print("only %d messages" % len(lat), file=sys.stderr); sys.exit(1)
q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]
print("%.1f %.1f" % (q(0.5), q(0.99)))
PY
    read -r p50 p99 <"$tmp/latq"
    record "latency at 2k rows/s" "p50 ms-" "$2" "$3" "$p50"
    record "latency at 2k rows/s" "p99 ms-" "$2" "$3" "$p99"
}

# ---- backfill (bench_backfill.sh) -------------------------------------------
bf_one() {
    local dsn="mysql://$MYSQL_USER:$MYSQL_PASSWORD@127.0.0.1:$MYSQL_PORT" t="cmp${run}bf$2$3" n
    timed "$2" /dev/null "$1/autoglm-cdc" backfill --source mysql --mysql-dsn "$dsn" --table "cmp$run.orders" \
        --sink file -o /dev/null --chunk-size 10000 --state-dir "$tmp/b$2$3" --pipeline b1 -q || return 1
    record "backfill -> /dev/null" "rows/s+" "$2" "$3" "$(rate "$BF_ROWS" "$wall")"
    record "backfill -> /dev/null" "cpu s/1M-" "$2" "$3" "$(cpu "$BF_ROWS")"
    record "backfill -> /dev/null" "peak RSS MB-" "$2" "$3" "$(mb "$rss")"
    ktopic "$t.orders"
    timed "$2" /dev/null "$1/autoglm-cdc" backfill --source mysql --mysql-dsn "$dsn" --table "cmp$run.orders" \
        --sink kafka --kafka-brokers "$KAFKA_BOOTSTRAP" --topic "$t.{table}" \
        --chunk-size 10000 --state-dir "$tmp/bk$2$3" --pipeline b2 -q || return 1
    n=$(kcount "$t.orders")
    [ "$n" = "$BF_ROWS" ] || { echo "    $n messages, want $BF_ROWS"; return 1; }
    record "backfill -> kafka" "rows/s+" "$2" "$3" "$(rate "$BF_ROWS" "$wall")"
    record "backfill -> kafka" "cpu s/1M-" "$2" "$3" "$(cpu "$BF_ROWS")"
    record "backfill -> kafka" "peak RSS MB-" "$2" "$3" "$(mb "$rss")"
}
path_backfill() {
    echo "== backfill: $BF_ROWS MariaDB rows"
    my -e "DROP DATABASE IF EXISTS cmp$run; CREATE DATABASE cmp$run; GRANT ALL ON cmp$run.* TO '$MYSQL_USER'@'%'"
    my "cmp$run" -e "SET SESSION sql_log_bin = 0;
CREATE TABLE orders (id BIGINT NOT NULL PRIMARY KEY, customer INT NOT NULL,
  amount DECIMAL(12,2), status VARCHAR(16), note VARCHAR(64), created DATETIME(3),
  updated TIMESTAMP(6) NULL, qty SMALLINT, score DOUBLE) ENGINE=InnoDB;
INSERT INTO orders SELECT seq, seq % 10007, (seq % 100000) / 100,
  ELT(1 + seq % 4, 'new', 'paid', 'shipped', 'done'), CONCAT('order note ', seq),
  '2024-01-01 00:00:00' + INTERVAL seq SECOND, '2024-06-01 00:00:00' + INTERVAL seq SECOND,
  seq % 300, seq / 7 FROM seq_1_to_$BF_ROWS;
ANALYZE TABLE orders;" >/dev/null
    alternate bf_one
    my -e "DROP DATABASE IF EXISTS cmp$run"
}

# ---- PostgreSQL catch-up (bench_pg.sh) ---------------------------------------
# slots hold WAL and the server has few: each run's copy goes when it is read
dropslot() { su -d "$PGDATABASE" -c "SELECT pg_drop_replication_slot('$1')" >/dev/null 2>&1 || true; }
pgdsn() { echo "host=$PGHOST port=$PGPORT user=$PG_SUPERUSER password=$PG_SUPERPASSWORD dbname=$PGDATABASE"; }
pg_one() {
    local s n l=${2,,}
    for s in o k; do
        su -d "$PGDATABASE" -c "SELECT pg_copy_logical_replication_slot('cmp${run}t', 'cmp${run}$s$l$3')" >/dev/null
    done
    # --idle-exit 1500: the wait is taken off the wall time
    counted "$2" "$1/autoglm-cdc" --source postgres --postgres-dsn "$(pgdsn)" \
        -X "postgres.slot=cmp${run}o$l$3" -X "postgres.publication=cmp$run" -X "postgres.tables=cmp$run.orders" \
        --sink stdout --idle-exit 1500 --pipeline "po$2$3" --state-dir "$tmp/po$2$3" -q || return 1
    dropslot "cmp${run}o$l$3"
    [ "$got" = "$rows" ] || { echo "    $got envelopes, want $rows"; return 1; }
    record "pg -> stdout" "rows/s+" "$2" "$3" "$(rate "$rows" "$(awk -v w="$wall" 'BEGIN { print w - 1.5 }')")"
    record "pg -> stdout" "cpu s/1M-" "$2" "$3" "$(cpu "$rows")"
    record "pg -> stdout" "peak RSS MB-" "$2" "$3" "$(mb "$rss")"
    ktopic "cmp${run}pg$2$3.orders"
    timed "$2" /dev/null "$1/autoglm-cdc" --source postgres --postgres-dsn "$(pgdsn)" \
        -X "postgres.slot=cmp${run}k$l$3" -X "postgres.publication=cmp$run" -X "postgres.tables=cmp$run.orders" \
        --sink kafka --kafka-brokers "$KAFKA_BOOTSTRAP" --topic "cmp${run}pg$2$3.{table}" \
        --idle-exit 1500 --pipeline "pk$2$3" --state-dir "$tmp/pk$2$3" -q || return 1
    dropslot "cmp${run}k$l$3"
    n=$(kcount "cmp${run}pg$2$3.orders")
    [ "$n" = "$rows" ] || { echo "    $n messages, want $rows"; return 1; }
    record "pg -> kafka" "rows/s+" "$2" "$3" "$(rate "$rows" "$(awk -v w="$wall" 'BEGIN { print w - 1.5 }')")"
    record "pg -> kafka" "cpu s/1M-" "$2" "$3" "$(cpu "$rows")"
    record "pg -> kafka" "peak RSS MB-" "$2" "$3" "$(mb "$rss")"
}
path_pg() {
    echo "== pg: $((TXNS * 1000)) row changes through pgoutput"
    su -d "$PGDATABASE" -c "DROP SCHEMA IF EXISTS cmp$run CASCADE; CREATE SCHEMA cmp$run"
    { echo "SET search_path = cmp$run;"; python3 "$SRC/bench/gen_orders.py" --postgres --ddl-only; } >"$tmp/ddl.sql"
    su -d "$PGDATABASE" -f "$tmp/ddl.sql" >/dev/null
    su -d "$PGDATABASE" -c "CREATE PUBLICATION cmp$run FOR TABLE cmp$run.orders" >/dev/null
    su -d "$PGDATABASE" -c "SELECT pg_create_logical_replication_slot('cmp${run}t', 'pgoutput')" >/dev/null
    { echo "SET search_path = cmp$run;"; python3 "$SRC/bench/gen_orders.py" "$TXNS" --postgres --no-ddl; } |
        su -d "$PGDATABASE" >/dev/null
    rows=$((TXNS * 1000))
    alternate pg_one
    su -d "$PGDATABASE" -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name LIKE 'cmp${run}%'" >/dev/null
    su -d "$PGDATABASE" -c "DROP SCHEMA cmp$run CASCADE; DROP PUBLICATION cmp$run" >/dev/null
}

# ---- one big transaction vs small ones (bench_bigtxn.sh) ---------------------
# sink_run BUILD LABEL PAIR SINK TAG IDLE_S|txns:N cmd-args...: sets got, wall
# Stops after N transactions (wall = the process's), or after IDLE_S
# without changes: then wall = from the start to the last delivery (the
# file's last write, the broker's append time of the last message), not
# the idle wait taken off: a build that hands a whole transaction to the
# sink at its commit delivers it during that wait.
sink_run() {
    local b=$1 l=$2 i=$3 k=$4 tag=$5 idle=$6 stop t0 tend t="cmp$run$5$2$3"
    shift 6
    case $idle in
    txns:*) stop="--max-txns ${idle#txns:}"; idle= ;;
    *) stop="--idle-exit $((idle * 1000))" ;;
    esac
    rm -f "$tmp/out.jsonl"
    case $k in
    file)
        t0=$(date +%s.%N)
        timed "$l" /dev/null "$b/autoglm-cdc" "$@" $stop --sink file -o "$tmp/out.jsonl" || return 1
        tend=$(date -r "$tmp/out.jsonl" +%s.%N)
        got=$(wc -l <"$tmp/out.jsonl")
        rm -f "$tmp/out.jsonl" ;;
    kafka)
        if [ -n "$idle" ]; then
            java -Xmx256m -cp "$KAFKA_JARS/*" org.apache.kafka.tools.TopicCommand \
                --bootstrap-server "$KAFKA_BOOTSTRAP" --create --topic "$t" --partitions 1 \
                --replication-factor 1 --config message.timestamp.type=LogAppendTime >/dev/null 2>&1 ||
                { echo "    cannot create $t with LogAppendTime (KAFKA_JARS)"; return 1; }
        fi
        ktopic "$t"
        t0=$(date +%s.%N)
        timed "$l" /dev/null "$b/autoglm-cdc" "$@" $stop --sink kafka \
            --kafka-brokers "$KAFKA_BOOTSTRAP" --topic "$t" || return 1
        tend=$(kcat -b "$KAFKA_BOOTSTRAP" -C -t "$t" -o -1 -e -q -f '%T\n' | tail -1 | awk '{ printf "%.3f", $1 / 1000 }')
        got=$(kcount "$t") ;;
    esac
    [ -z "$idle" ] || wall=$(awk -v a="$t0" -v b="$tend" 'BEGIN { print b - a }')
}
big_my_one() {
    local k shape from
    for k in $BIG_SINKS; do
        for shape in s b; do
            [ $shape = s ] && from="$bf0:$bp0" || from="$bf1:$bp1"
            # (the big one by the idle wait: --max-txns counts the
            # fragments of pipeline.fragment_rows/_kb in the new engine)
            sink_run "$1" "$2" "$3" "$k" "my$shape" "$([ $shape = s ] && echo "txns:$((BIG_ROWS / 1000))" || echo 3)" --source mysql \
                --mysql-dsn "mysql://root:$MYSQL_ROOT_PASSWORD@127.0.0.1:$MYSQL_PORT" --from "$from" \
                --include "cmp$run.$shape" --pipeline "bm$shape" --state-dir "$tmp/bm$k$shape$2$3" -q || return 1
            [ "$got" = "$BIG_ROWS" ] || { echo "    $got envelopes, want $BIG_ROWS"; return 1; }
            record "bigtxn mysql -> $k ($shape)" "rows/s+" "$2" "$3" "$(rate "$BIG_ROWS" "$wall")"
            record "bigtxn mysql -> $k ($shape)" "peak RSS MB-" "$2" "$3" "$(mb "$rss")"
        done
    done
}
big_pg_one() {
    local k shape l=${2,,}
    for k in $BIG_SINKS; do
        for shape in s b; do
            su -d "$PGDATABASE" -c "SELECT pg_copy_logical_replication_slot('cmp${run}$shape', 'cmp${run}$shape$k$l$3')" >/dev/null
            # (the walsender decodes a big transaction before its first change
            # arrives: a longer idle wait for it)
            sink_run "$1" "$2" "$3" "$k" "pg$shape" $([ $shape = s ] && echo 5 || echo 20) \
                --source postgres --postgres-dsn "$(pgdsn)" -X "postgres.slot=cmp${run}$shape$k$l$3" \
                -X "postgres.publication=cmp${run}$shape" --pipeline "bp$shape" \
                --state-dir "$tmp/bp$k$shape$2$3" -q || { dropslot "cmp${run}$shape$k$l$3"; return 1; }
            dropslot "cmp${run}$shape$k$l$3"
            [ "$got" = "$BIG_ROWS" ] || { echo "    $got envelopes, want $BIG_ROWS"; return 1; }
            record "bigtxn pg -> $k ($shape)" "rows/s+" "$2" "$3" "$(rate "$BIG_ROWS" "$wall")"
            record "bigtxn pg -> $k ($shape)" "peak RSS MB-" "$2" "$3" "$(mb "$rss")"
        done
    done
}
small_sql() {
    local i
    for ((i = 0; i < BIG_ROWS / 1000; i++)); do
        echo "UPDATE $1 SET v = v + 1 WHERE id > $((i * 1000)) AND id <= $(((i + 1) * 1000));"
    done
}
path_bigtxn() {
    echo "== bigtxn: $BIG_ROWS row updates, as transactions of 1000 rows (s) and as one (b)"
    [[ " $BIG_SOURCES " == *" mysql "* ]] && bigtxn_mysql
    [[ " $BIG_SOURCES " == *" pg "* ]] && bigtxn_pg
    return 0
}
bigtxn_mysql() {
    my -e "DROP DATABASE IF EXISTS cmp$run; CREATE DATABASE cmp$run;
        CREATE TABLE cmp$run.s (id INT PRIMARY KEY, v BIGINT NOT NULL, pad VARCHAR(80));
        CREATE TABLE cmp$run.b LIKE cmp$run.s;
        INSERT INTO cmp$run.s SELECT seq, 0, REPEAT('p', 60) FROM cmp$run.seq_1_to_$BIG_ROWS;
        INSERT INTO cmp$run.b SELECT * FROM cmp$run.s"
    read -r bf0 bp0 _ < <(my -N -e "SHOW MASTER STATUS")
    small_sql "cmp$run.s" | my
    read -r bf1 bp1 _ < <(my -N -e "SHOW MASTER STATUS")
    my -e "UPDATE cmp$run.b SET v = v + 1"
    alternate big_my_one
    my -e "DROP DATABASE IF EXISTS cmp$run"
}
bigtxn_pg() {
    local d="-d $PGDATABASE"
    su $d -c "DROP SCHEMA IF EXISTS cmp$run CASCADE; CREATE SCHEMA cmp$run;
        CREATE TABLE cmp$run.s (id INT PRIMARY KEY, v BIGINT NOT NULL, pad TEXT);
        CREATE TABLE cmp$run.b (LIKE cmp$run.s INCLUDING ALL);
        INSERT INTO cmp$run.s SELECT g, 0, repeat('p', 60) FROM generate_series(1, $BIG_ROWS) g;
        INSERT INTO cmp$run.b SELECT * FROM cmp$run.s;
        CREATE PUBLICATION cmp${run}s FOR TABLE cmp$run.s;
        CREATE PUBLICATION cmp${run}b FOR TABLE cmp$run.b" >/dev/null
    su $d -c "SELECT pg_create_logical_replication_slot('cmp${run}s', 'pgoutput')" >/dev/null
    small_sql "cmp$run.s" | su $d >/dev/null
    su $d -c "SELECT pg_create_logical_replication_slot('cmp${run}b', 'pgoutput')" >/dev/null
    su $d -c "UPDATE cmp$run.b SET v = v + 1"
    alternate big_pg_one
    su $d -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name LIKE 'cmp${run}%'" >/dev/null
    su $d -c "DROP SCHEMA cmp$run CASCADE; DROP PUBLICATION cmp${run}s, cmp${run}b" >/dev/null
}

# ---- mapping engine -> PostgreSQL wide table (map_pg_bench.sh) ------------------
map_one() {
    [ -x "$1/bench/map_pg_bench" ] || make -C "$1" bench/map_pg_bench >/dev/null
    local db=cmp${run}map o
    su -d postgres -c "DROP DATABASE IF EXISTS $db" >/dev/null
    su -d postgres -c "CREATE DATABASE $db OWNER $PGUSER" >/dev/null
    o=$(BENCH_NO_BASELINE=1 "$1/bench/map_pg_bench" \
        "host=$PGHOST port=$PGPORT user=$PGUSER password=$PGPASSWORD dbname=$db" \
        "$SRC/mappings/examples/customer_wide.yaml" "$MAP_N" 10 2>"$tmp/err") || { tail -3 "$tmp/err"; return 1; }
    su -d postgres -c "DROP DATABASE $db" >/dev/null
    record "map_pg_bench (wide pg)" "changes/s+" "$2" "$3" "$(echo "$o" | sed -n 's/.*= \([0-9]*\) changes\/s.*/\1/p')"
}

for p in $WHAT; do
    case $p in
    envelope) echo "== envelope writer: 1M envelopes"; alternate env_one $((PAIRS * 2)) ;;
    decode) path_decode ;;
    kafka) echo "== mysql -> kafka catch-up"; my_workload; alternate kafka_autoglm ;;
    debezium) echo "== mysql -> kafka catch-up, --format debezium"; my_workload; alternate kafka_debezium ;;
    latency) echo "== commit -> kafka latency, 2,000 rows/s for 15 s"
        my -e "DROP DATABASE IF EXISTS cmp$run; CREATE DATABASE cmp$run"; alternate lat_one ;;
    backfill) path_backfill ;;
    pg) path_pg ;;
    bigtxn) path_bigtxn ;;
    map_pg) echo "== mapping engine -> PostgreSQL wide table: $MAP_N changes"; alternate map_one ;;
    esac
done

echo
summary "$OUT"
exit $fail
