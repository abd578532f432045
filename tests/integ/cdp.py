# SPDX-License-Identifier: Apache-2.0
"""Drive a real headless Chromium over the DevTools protocol, through
--remote-debugging-pipe (JSON messages ended by NUL on fds 3 and 4), so
that no WebSocket library is needed.

    b = cdp.Browser(tmpdir)
    b.cookie("http://127.0.0.1:9464/", "name", "value")
    b.goto("http://127.0.0.1:9464/")
    rows = b.eval("...JS returning JSON-able value...")
    open("shot.png", "wb").write(b.screenshot())
    b.close()
"""
import base64
import json
import os
import shutil
import subprocess
import time


def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        p = shutil.which(name)
        if p:
            return p
    return None


class Browser:
    def __init__(self, tmpdir, width=1200, height=500):
        to_chrome_r, self._w = os.pipe()
        self._r, from_chrome_w = os.pipe()

        def fds():
            # copies first: a pipe end may already be fd 3 or 4, and
            # dup2 onto itself would keep its close-on-exec flag
            a, b = os.dup(to_chrome_r), os.dup(from_chrome_w)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen(
            [chromium(), "--headless=new", "--remote-debugging-pipe", "--no-sandbox", "--disable-gpu",
             "--no-first-run", "--no-default-browser-check", "--disable-extensions",
             "--user-data-dir=" + os.path.join(tmpdir, "chromium-profile"),
             "--window-size=%d,%d" % (width, height), "about:blank"],
            close_fds=False, preexec_fn=fds,  # pass_fds would close 3 and 4
            stdout=open(os.path.join(tmpdir, "chromium.log"), "w"), stderr=subprocess.STDOUT)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buf = b""
        self._id = 0
        self.events = []
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.call("Page.enable", session=True)
        self.call("Runtime.enable", session=True)
        self.call("Network.enable", session=True)

    def _read(self, timeout):
        end = time.time() + timeout
        while b"\0" not in self._buf:
            if time.time() > end:
                raise TimeoutError("chromium did not answer")
            chunk = os.read(self._r, 65536)
            if not chunk:
                raise EOFError("chromium closed the pipe (see chromium.log)")
            self._buf += chunk
        msg, self._buf = self._buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method, session=False, timeout=30, **params):
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params}
        if session:
            msg["sessionId"] = self.session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        while True:
            m = self._read(timeout)
            if m.get("id") == self._id:
                if "error" in m:
                    raise RuntimeError("%s: %s" % (method, m["error"]))
                return m.get("result", {})
            self.events.append(m)

    def wait_event(self, method, timeout=30):
        end = time.time() + timeout
        while True:
            for i, e in enumerate(self.events):
                if e.get("method") == method:
                    return self.events.pop(i)
            self.events.append(self._read(max(0.1, end - time.time())))

    def cookie(self, url, name, value):
        r = self.call("Network.setCookie", session=True, url=url, name=name, value=value,
                      sameSite="Strict", httpOnly=False)
        if not r.get("success", True):
            raise RuntimeError("setCookie refused")

    def goto(self, url, timeout=30):
        self.events = [e for e in self.events if e.get("method") != "Page.loadEventFired"]
        r = self.call("Page.navigate", session=True, url=url)
        if r.get("errorText"):
            raise RuntimeError("navigate %s: %s" % (url, r["errorText"]))
        self.wait_event("Page.loadEventFired", timeout)

    def eval(self, expr):
        r = self.call("Runtime.evaluate", session=True, expression=expr, returnByValue=True,
                      awaitPromise=True)
        if "exceptionDetails" in r:
            raise RuntimeError("JS: %s" % r["exceptionDetails"])
        return r["result"].get("value")

    def screenshot(self):
        return base64.b64decode(self.call("Page.captureScreenshot", session=True, format="png")["data"])

    def close(self):
        try:
            self.call("Browser.close", timeout=5)
        except Exception:
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._w)
        os.close(self._r)
