#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""An HTTP/2-only webhook receiver for the HTTP sink tests, on 127.0.0.1,
built on the h2 protocol library (Debian python3-h2).

    h2_recv.py PORTFILE LOGFILE [CERT KEY]

With CERT and KEY: TLS offering only "h2" by ALPN; without: h2c, where a
client must start with the HTTP/2 connection preface (prior knowledge).
Anything that is not HTTP/2 (an HTTP/1.1 request) is a protocol error of
the h2 library: logged as {"error": ...} and the connection is closed.
Every request is answered 200 and logged to LOGFILE as one JSON line:
    {"t": arrival (s), "conn": client port, "proto": "h2", "alpn": the
     protocol TLS negotiated (null for h2c), "stream": stream id,
     "method": .., "path": .., "status": 200,
     "headers": {lower-case name: value}, "body": text}
"""
import json
import os
import socket
import ssl
import sys
import threading
import time

import h2.config
import h2.connection
import h2.events
import h2.exceptions

PORTFILE, LOGFILE = sys.argv[1], sys.argv[2]
lock = threading.Lock()
logf = open(LOGFILE, "a")


def write(rec):
    with lock:
        logf.write(json.dumps(rec) + "\n")
        logf.flush()


def serve(sock, port, alpn):
    c = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=False,
                                                                    header_encoding="utf-8"))
    c.initiate_connection()
    sock.sendall(c.data_to_send())
    streams = {}
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                break
            try:
                events = c.receive_data(data)
            except h2.exceptions.ProtocolError as e:
                write({"t": time.time(), "conn": port, "error": "not HTTP/2: %s" % e,
                       "start": data[:40].decode("latin-1")})
                break
            for ev in events:
                if isinstance(ev, h2.events.RequestReceived):
                    streams[ev.stream_id] = {"t": time.time(), "headers": ev.headers, "body": bytearray()}
                elif isinstance(ev, h2.events.DataReceived):
                    streams[ev.stream_id]["body"] += ev.data
                    c.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                elif isinstance(ev, h2.events.StreamEnded):
                    st = streams.pop(ev.stream_id)
                    hd = {k.lower(): v for k, v in st["headers"]}
                    c.send_headers(ev.stream_id, [(":status", "200"), ("content-length", "0")],
                                   end_stream=True)
                    write({"t": st["t"], "conn": port, "proto": "h2", "alpn": alpn, "stream": ev.stream_id,
                           "method": hd.get(":method"), "path": hd.get(":path"), "status": 200,
                           "headers": {k: v for k, v in hd.items() if not k.startswith(":")},
                           "body": bytes(st["body"]).decode("utf-8", "replace")})
                elif isinstance(ev, h2.events.ConnectionTerminated):
                    return
            out = c.data_to_send()
            if out:
                sock.sendall(out)
    except OSError:
        pass
    finally:
        sock.close()


lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
lsock.bind(("127.0.0.1", 0))
lsock.listen(16)
ctx = None
if len(sys.argv) > 4:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(sys.argv[3], sys.argv[4])
    ctx.set_alpn_protocols(["h2"])
with open(PORTFILE + ".tmp", "w") as f:
    f.write(str(lsock.getsockname()[1]))
os.rename(PORTFILE + ".tmp", PORTFILE)
while True:
    s, addr = lsock.accept()
    alpn = None
    if ctx:
        try:
            s = ctx.wrap_socket(s, server_side=True)
        except (ssl.SSLError, OSError) as e:
            write({"t": time.time(), "conn": addr[1], "error": "TLS: %s" % e})
            s.close()
            continue
        alpn = s.selected_alpn_protocol()
    threading.Thread(target=serve, args=(s, addr[1], alpn), daemon=True).start()
