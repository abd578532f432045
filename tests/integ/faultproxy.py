# SPDX-License-Identifier: Apache-2.0
"""A loopback TCP proxy that can stop forwarding without closing.

Fault injection for the half-open-link tests: the tool connects to the
proxy, the proxy to the server.  freeze() turns every open connection
into a half-open one: the proxy stops reading and writing both sides but
keeps the sockets open, so neither end sees a FIN or a reset, exactly as
when a firewall drops packets or a peer hangs.  While frozen, new
connections are accepted and then held the same way.  thaw() makes new
connections work again; the frozen ones stay dead until close().

    import faultproxy
    p = faultproxy.Proxy(target_port)      # listens on 127.0.0.1:p.port
    p.freeze(); ...; p.thaw(); p.close()

Run as a program (python3 faultproxy.py TARGET_PORT), it prints its port
and obeys SIGUSR1 (freeze) and SIGUSR2 (thaw).  Loopback only.
"""
import selectors
import signal
import socket
import sys
import threading

BUF = 65536


class _Pair:
    def __init__(self, a, b):
        self.ends = (a, b)
        self.out = {a: bytearray(), b: bytearray()}  # pending bytes to send to
        self.frozen = False


class Proxy:
    def __init__(self, target_port, listen_port=0):
        self.target = ("127.0.0.1", int(target_port))
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", listen_port))
        self.lsock.listen(64)
        self.lsock.setblocking(False)
        self.port = self.lsock.getsockname()[1]
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.lsock, selectors.EVENT_READ, None)
        self.pairs = []
        self.held = []          # connections accepted while frozen
        self.frozen = False
        self.accepted = 0
        self.mu = threading.Lock()
        self.wake_r, self.wake_w = socket.socketpair()
        self.sel.register(self.wake_r, selectors.EVENT_READ, "wake")
        self.stop = False
        self.thr = threading.Thread(target=self._loop, daemon=True)
        self.thr.start()

    # --- control (any thread) ------------------------------------------
    def _poke(self):
        try:
            self.wake_w.send(b"x")
        except OSError:
            pass

    def freeze(self):
        """Stop forwarding on every connection, now and for new ones."""
        with self.mu:
            self.frozen = True
        self._poke()

    def thaw(self):
        """Forward new connections again (frozen ones stay frozen)."""
        with self.mu:
            self.frozen = False
        self._poke()

    def close(self):
        self.stop = True
        self._poke()
        self.thr.join(5)
        for p in self.pairs:
            for s in p.ends:
                s.close()
        for s in self.held:
            s.close()
        self.lsock.close()

    # --- the loop (proxy thread) ----------------------------------------
    def _mask(self, pair, s):
        other = pair.ends[1] if s is pair.ends[0] else pair.ends[0]
        m = 0
        if len(pair.out[other]) < 4 * BUF:
            m |= selectors.EVENT_READ
        if pair.out[s]:
            m |= selectors.EVENT_WRITE
        return m

    def _update(self, pair):
        for s in pair.ends:
            m = 0 if pair.frozen else self._mask(pair, s)
            key = self.sel.get_map().get(s)
            if m and key is None:
                self.sel.register(s, m, pair)
            elif m and key.events != m:
                self.sel.modify(s, m, pair)
            elif not m and key is not None:
                self.sel.unregister(s)

    def _drop(self, pair):
        for s in pair.ends:
            if s in self.sel.get_map():
                self.sel.unregister(s)
            s.close()
        self.pairs.remove(pair)

    def _accept(self):
        try:
            c, _ = self.lsock.accept()
        except BlockingIOError:
            return
        self.accepted += 1
        with self.mu:
            frozen = self.frozen
        if frozen:
            self.held.append(c)      # never answered, never closed
            return
        try:
            u = socket.create_connection(self.target, timeout=5)
        except OSError:
            c.close()
            return
        c.setblocking(False)
        u.setblocking(False)
        pair = _Pair(c, u)
        self.pairs.append(pair)
        self._update(pair)

    def _io(self, pair, s, ev):
        other = pair.ends[1] if s is pair.ends[0] else pair.ends[0]
        if ev & selectors.EVENT_READ:
            try:
                data = s.recv(BUF)
            except (BlockingIOError, InterruptedError):
                data = None
            except OSError:
                data = b""
            if data == b"":
                self._drop(pair)
                return
            if data:
                pair.out[other] += data
        for d in pair.ends:
            if pair.out[d]:
                try:
                    n = d.send(pair.out[d])
                    del pair.out[d][:n]
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError:
                    self._drop(pair)
                    return
        self._update(pair)

    def _loop(self):
        while not self.stop:
            with self.mu:
                frozen = self.frozen
            if frozen:
                for p in self.pairs:
                    if not p.frozen:
                        p.frozen = True
                        self._update(p)
            for key, ev in self.sel.select(0.5):
                if key.data == "wake":
                    key.fileobj.recv(64)
                elif key.data is None:
                    self._accept()
                elif not key.data.frozen and key.data in self.pairs:
                    self._io(key.data, key.fileobj, ev)


def main():
    p = Proxy(int(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 0)
    signal.signal(signal.SIGUSR1, lambda *_: p.freeze())
    signal.signal(signal.SIGUSR2, lambda *_: p.thaw())
    print(p.port, flush=True)
    try:
        while True:
            signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        p.close()


if __name__ == "__main__":
    main()
