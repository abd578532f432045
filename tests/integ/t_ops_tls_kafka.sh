#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# t_ops_tls_kafka.sh - the Kafka sink over TLS (security.protocol=ssl) and
# TLS + SASL/PLAIN (sasl_ssl) with certificate verification, against a
# single-node KRaft Kafka of its own (SSL and SASL_SSL listeners on free
# loopback ports, certificates made here).  The shared Kafka is untouched.
# Checks: envelopes arrive over both listeners; a wrong CA and a wrong SASL
# password fail with a clear error and a non-zero exit; neither the SASL
# password nor the key appears in any output.
#   CDC_BUILD=/work/build-x bash tests/integ/t_ops_tls_kafka.sh
. "$(dirname "$0")/lib.sh"
need cdc
need openssl
need java
need kcat
JARS=${KAFKA_JARS:-$HOME/.cache/autoglm-cdc/kafka-${KAFKA_VERSION:-3.9.1}}
ls "$JARS"/kafka_2.13-*.jar >/dev/null 2>&1 || skip "no Kafka jars in $JARS (tests/services.sh up kafka fetches them)"
FIX=${CDC_FIXTURES:-${CDC_FIXTURES_DEFAULT:-$ROOT/../shared/fixtures}}/binlog/mariadb-10.11/03_row_images.binlog
[ -f "$FIX" ] || skip "fixture $FIX missing"
NROWS=$("$CDC" decode "$FIX" 2>/dev/null | wc -l)
[ "$NROWS" -gt 0 ] || fail "the fixture decodes to nothing"

freeport() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

# --- certificates --------------------------------------------------------------
C=$T/certs
mkdir -p "$C"
ossl() { openssl "$@" >/dev/null 2>&1 || fail "openssl $1 failed"; }
ossl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=cdc test CA" -keyout "$C/ca.key" -out "$C/ca.pem"
ossl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=other CA" -keyout "$C/other.key" -out "$C/other.pem"
ossl req -newkey rsa:2048 -nodes -subj "/CN=kafka.invalid" -keyout "$C/server.key" -out "$C/server.csr"
printf 'subjectAltName=IP:127.0.0.1\n' >"$C/ext.cnf"
ossl x509 -req -in "$C/server.csr" -CA "$C/ca.pem" -CAkey "$C/ca.key" -CAcreateserial -days 2 \
    -extfile "$C/ext.cnf" -out "$C/server.pem"
# PEM key store for the broker: PKCS#8 key + certificate chain in one file
ossl pkcs8 -topk8 -nocrypt -in "$C/server.key" -out "$C/server.p8"
cat "$C/server.p8" "$C/server.pem" "$C/ca.pem" >"$C/keystore.pem"

# --- our own Kafka -----------------------------------------------------------------
K=$T/kafka
mkdir -p "$K"
SSLP=$(freeport) SASLP=$(freeport) CTLP=$(freeport)
SASLPW='KfPw-3mZr8Qe1'
cat >"$K/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CTLP
listeners=SSL://127.0.0.1:$SSLP,SASL_SSL://127.0.0.1:$SASLP,CONTROLLER://127.0.0.1:$CTLP
advertised.listeners=SSL://127.0.0.1:$SSLP,SASL_SSL://127.0.0.1:$SASLP
controller.listener.names=CONTROLLER
inter.broker.listener.name=SSL
listener.security.protocol.map=CONTROLLER:PLAINTEXT,SSL:SSL,SASL_SSL:SASL_SSL
ssl.keystore.type=PEM
ssl.keystore.location=$C/keystore.pem
ssl.truststore.type=PEM
ssl.truststore.location=$C/ca.pem
ssl.client.auth=none
sasl.enabled.mechanisms=PLAIN
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="$SASLPW" user_admin="$SASLPW" user_cdc="$SASLPW";
log.dirs=$K/data
num.partitions=1
default.replication.factor=1
auto.create.topics.enable=true
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=2
EOF
cat >"$K/log4j.properties" <<EOF
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=$K/server.log
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
EOF
JOPTS=(-Xmx384m -Xms128m -XX:+UseG1GC -Djava.awt.headless=true -Dlog4j.configuration="file:$K/log4j.properties")
CID=$(python3 -c 'import base64,uuid;print(base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="))')
java "${JOPTS[@]}" -cp "$JARS/*" kafka.tools.StorageTool format --cluster-id="$CID" -c "$K/server.properties" \
    >"$K/format.log" 2>&1 || { tail "$K/format.log" >&2; fail "kafka storage format failed"; }
java "${JOPTS[@]}" -cp "$JARS/*" kafka.Kafka "$K/server.properties" </dev/null >"$K/stdout.log" 2>&1 &
kpid=$!
cleanup() {
    local rc=$?
    kill -TERM $kpid 2>/dev/null
    for _ in $(seq 1 50); do kill -0 $kpid 2>/dev/null || break; sleep 0.2; done
    kill -KILL $kpid 2>/dev/null
    wait $kpid 2>/dev/null
    (exit $rc)
    _cdc_cleanup
}
trap cleanup EXIT
KSSL=(-X security.protocol=ssl -X ssl.ca.location="$C/ca.pem")
kup() { kcat -b "127.0.0.1:$SSLP" "${KSSL[@]}" -L -m 3 >/dev/null 2>&1; }
wait_for 90 "our Kafka answers over TLS" kup
log "kafka up: SSL $SSLP, SASL_SSL $SASLP"

# produce NAME CODE ARGS...: decode the fixture into our Kafka
produce() {
    local name=$1 code=$2 rc
    shift 2
    timeout 120 "$CDC" decode --sink kafka --topic "tls.$name" -X kafka.message.timeout.ms=8000 \
        "$@" "$FIX" >"$T/seen.$name.out" 2>"$T/seen.$name.err"
    rc=$?
    # the documented code exactly (78: the TLS/SASL cause, docs/OPERATIONS.md);
    # 124 would be a run that hung until timeout killed it
    [ $rc = "$code" ] || { cat "$T/seen.$name.err" >&2; fail "$name: exit $rc, expected $code"; }
    log "$name: exit $rc"
}
count() { kcat -b "127.0.0.1:$SSLP" "${KSSL[@]}" -C -t "tls.$1" -o beginning -e -q -f '.\n' 2>/dev/null | wc -l; }

produce ssl 0 --kafka-brokers "127.0.0.1:$SSLP" -X kafka.security.protocol=ssl -X kafka.ssl.ca.location="$C/ca.pem"
[ "$(count ssl)" = "$NROWS" ] || fail "ssl: $(count ssl) messages, expected $NROWS"
produce sasl_ssl 0 --kafka-brokers "127.0.0.1:$SASLP" -X kafka.security.protocol=sasl_ssl \
    -X kafka.ssl.ca.location="$C/ca.pem" -X kafka.sasl.mechanisms=PLAIN \
    -X kafka.sasl.username=cdc -X kafka.sasl.password="$SASLPW"
[ "$(count sasl_ssl)" = "$NROWS" ] || fail "sasl_ssl: $(count sasl_ssl) messages, expected $NROWS"

produce wrong_ca 78 --kafka-brokers "127.0.0.1:$SSLP" -X kafka.security.protocol=ssl -X kafka.ssl.ca.location="$C/other.pem"
grep -qi "certificate verify failed" "$T/seen.wrong_ca.err" || { cat "$T/seen.wrong_ca.err" >&2; fail "wrong_ca: no certificate error"; }
produce wrong_pw 78 --kafka-brokers "127.0.0.1:$SASLP" -X kafka.security.protocol=sasl_ssl \
    -X kafka.ssl.ca.location="$C/ca.pem" -X kafka.sasl.mechanisms=PLAIN \
    -X kafka.sasl.username=cdc -X kafka.sasl.password="wrong-$SASLPW"
grep -qi "authentication" "$T/seen.wrong_pw.err" || { cat "$T/seen.wrong_pw.err" >&2; fail "wrong_pw: no authentication error"; }
# the broker's host name is verified by default (librdkafka >= 2.0:
# ssl.endpoint.identification.algorithm=https): "localhost" is not in the
# certificate (IP:127.0.0.1 only)
produce wrong_host 78 --kafka-brokers "localhost:$SSLP" -X kafka.security.protocol=ssl -X kafka.ssl.ca.location="$C/ca.pem"
grep -qi "certificate verify failed\|hostname\|host name" "$T/seen.wrong_host.err" || { cat "$T/seen.wrong_host.err" >&2; fail "wrong_host: no certificate error"; }
# plaintext to the TLS listener fails: librdkafka sees a broker that
# drops the connection, not a TLS error, so the run waits out the message
# timeout like for an unreachable broker (69)
produce plaintext 69 --kafka-brokers "127.0.0.1:$SSLP"
grep -q 'delivery to topic "tls.plaintext" failed' "$T/seen.plaintext.err" || fail "plaintext: no delivery error"

# secrets: the SASL password (right and wrong) and the private key
"$CDC" config -X kafka.sasl.password="$SASLPW" -X kafka.ssl.key.pem="$(cat "$C/server.key")" \
    -X kafka.ssl.key.password="$SASLPW" >"$T/seen.config" 2>&1
grep -q 'kafka.sasl.password = \*\*\*\*\*\*' "$T/seen.config" || { cat "$T/seen.config" >&2; fail "config does not mask kafka.sasl.password"; }
keyline=$(sed -n 2p "$C/server.key")
if grep -l -e "$SASLPW" -e "$keyline" "$T"/seen.*; then
    grep -n -e "$SASLPW" -e "$keyline" "$T"/seen.* >&2
    fail "a secret appears in the output above"
fi
log "kafka TLS and SASL ok"
