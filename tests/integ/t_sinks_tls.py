#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""TLS with certificate verification for the message sinks: RabbitMQ's and
Mosquitto's TLS listeners (tests/services.sh up mariadb rabbitmq
mosquitto, certificates from the services' test CA) and an https
webhook_recv.py.  With the right CA every change arrives with its values;
with another CA the run stops with exit 78 naming the TLS key.
"""
import json
import os
import subprocess
import tempfile
import time

import dblib
import sinklib
from dblib import E, ROOT, fail, log

dblib.need("MYSQL_PORT", "RMQ_TLS_PORT", "MQ_TLS_PORT", "SVC_CA",
           what="MariaDB, RabbitMQ and Mosquitto with TLS listeners",
           tools=("openssl", "mosquitto_sub"))
PID = os.getpid()
TMP = tempfile.mkdtemp(prefix="cdc-tls.")
DB = "tls_%d" % PID
procs = []
dblib.on_fail(lambda: dblib.cleanup(procs, TMP, my_dbs=[DB]), logdir=TMP)
CA = E["SVC_CA"]
CERTS = os.path.dirname(CA)
OTHER = os.path.join(TMP, "other.pem")
subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                "/CN=another CA", "-keyout", os.path.join(TMP, "other.key"), "-out", OTHER],
               check=True, capture_output=True)
w = sinklib.Workload(DB)
w.run(200)


def run(name, sink_args, idle=2500):
    cmd = sinklib.cdc_cmd(w, name, os.path.join(TMP, "state"), sink_args)
    with open(os.path.join(TMP, name + ".log"), "wb") as f:
        rc = subprocess.run(cmd + ["--idle-exit", str(idle)], stdout=f, stderr=f,
                            timeout=120).returncode
    return rc, open(os.path.join(TMP, name + ".log")).read()


def refused(name, sink_args, key):
    rc, text = run(name, sink_args)
    if rc != 78 or key not in text:
        fail("%s with another CA: exit %d, want 78 naming %s\n%s" % (name, rc, key, text[-600:]))
    log("%s: another CA refused, exit 78" % name)


# RabbitMQ: amqps to localhost (librabbitmq matches DNS names only)
EX = "tls_%d" % PID
CONSUME = sinklib.amqp_consume()
subprocess.run([CONSUME, E["RMQ_URL"], EX, "q" + EX, "#", "declare"], check=True)
url = "amqps://%s:%s@localhost:%s/" % (E["RMQ_USER"], E["RMQ_PASSWORD"], E["RMQ_TLS_PORT"])
rc, text = run("rmq", ["--sink", "rabbitmq", "-X", "rabbitmq.url=" + url, "-X",
                       "rabbitmq.tls.ca=" + CA, "-X", "rabbitmq.exchange=" + EX])
if rc:
    fail("rabbitmq over TLS: exit %d\n%s" % (rc, text[-600:]))
out = subprocess.run([CONSUME, E["RMQ_URL"], EX, "q" + EX, "#", "drain", "1000"],
                     capture_output=True, text=True).stdout
sinklib.check([json.loads(m["body"]) for m in sinklib.parse_lines(out)], w, "rabbitmq TLS")
refused("rmq_bad", ["--sink", "rabbitmq", "-X", "rabbitmq.url=" + url, "-X",
                    "rabbitmq.tls.ca=" + OTHER, "-X", "rabbitmq.exchange=" + EX], "rabbitmq.tls.ca")

# MQTT
AUTH = ["-h", "127.0.0.1", "-p", E["MQ_PORT"], "-u", E["MQ_USER"], "-P", E["MQ_PASSWORD"]]
subprocess.run(["mosquitto_sub"] + AUTH + ["-c", "-i", "s" + DB, "-q", "1", "-t", DB + "/#", "-E"],
               check=True)
mq = ["--sink", "mqtt", "-X", "mqtt.port=" + E["MQ_TLS_PORT"], "-X", "mqtt.user=" + E["MQ_USER"],
      "-X", "mqtt.password=" + E["MQ_PASSWORD"], "-X", "mqtt.topic={db}/{table}", "-X",
      "mqtt.client_id=c" + DB]
rc, text = run("mqtt", mq + ["-X", "mqtt.tls.ca=" + CA])
if rc:
    fail("mqtt over TLS: exit %d\n%s" % (rc, text[-600:]))
r = subprocess.run(["mosquitto_sub"] + AUTH + ["-c", "-i", "s" + DB, "-q", "1", "-t", DB + "/#",
                                               "-C", str(w.changes), "-W", "20"],
                   capture_output=True, text=True)
sinklib.check([json.loads(l) for l in r.stdout.splitlines()], w, "mqtt TLS")
refused("mqtt_bad", mq + ["-X", "mqtt.tls.ca=" + OTHER], "mqtt.tls.ca")

# HTTPS webhook
pf, lf = os.path.join(TMP, "port"), os.path.join(TMP, "requests")
p = subprocess.Popen(["python3", os.path.join(ROOT, "tests/integ/webhook_recv.py"), pf, lf,
                      os.path.join(CERTS, "server.pem"), os.path.join(CERTS, "server.key")])
procs.append(p)
for _ in range(100):
    if os.path.exists(pf):
        break
    time.sleep(0.05)
hook = ["--sink", "http", "-X", "webhook.url=https://127.0.0.1:%s/h" % open(pf).read()]
rc, text = run("http", hook + ["-X", "webhook.tls.ca=" + CA])
if rc:
    fail("https webhook: exit %d\n%s" % (rc, text[-600:]))
sinklib.check([json.loads(json.loads(l)["body"]) for l in open(lf)], w, "https webhook")
refused("http_bad", hook + ["-X", "webhook.tls.ca=" + OTHER], "webhook.tls.ca")

dblib.cleanup(procs, TMP, my_dbs=[DB])
print("PASS")
