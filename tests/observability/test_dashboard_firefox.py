"""The dashboard in Firefox: Debian's firefox-esr, headless, driven over WebDriver BiDi (the W3C protocol
Firefox speaks itself; Playwright would need its own patched Firefox build). The page loads, updates
itself, and shows the alert banner when memory crosses the alert level. Screenshot:
test-artifacts/dashboard-firefox.png."""
import base64
import itertools
import json
import os
import re
import shutil
import subprocess
import tempfile
import time

import pytest
import redis

from support import servers

FIREFOX = shutil.which("firefox-esr") or shutil.which("firefox")
ARTIFACTS = os.environ.get("NOVA_TEST_ARTIFACTS", os.path.join(os.path.dirname(__file__), "..", "..", "test-artifacts"))

try:
    from websockets.sync.client import connect
except ImportError:  # pragma: no cover - installed by scripts/install-test-deps
    connect = None


class BiDi:
    """A minimal WebDriver BiDi session: commands by id, events ignored."""

    def __init__(self, url):
        self.socket = connect(url, max_size=64 << 20, open_timeout=20)
        self.ids = itertools.count(1)

    def call(self, method, **params):
        number = next(self.ids)
        self.socket.send(json.dumps({"id": number, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv(timeout=30))
            if message.get("id") == number:
                if message.get("type") == "error":
                    raise RuntimeError(f"{method}: {message.get('error')}: {message.get('message')}")
                return message["result"]

    def evaluate(self, context, expression):
        result = self.call("script.evaluate", expression=expression, target={"context": context}, awaitPromise=False)
        return result["result"].get("value")

    def wait_for(self, context, expression, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.evaluate(context, expression):
                return
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {expression}")


@pytest.mark.skipif(FIREFOX is None or connect is None, reason="firefox-esr and websockets are installed by scripts/install-test-deps")
def test_dashboard_in_firefox():
    http = servers.free_port()
    server = servers.start_nova("--save", "", "--http-port", str(http), "--maxmemory", "64mb", "--alert-memory", "50%")
    profile = tempfile.mkdtemp(prefix="nova-firefox-")
    port = servers.free_port()
    browser = subprocess.Popen(
        [FIREFOX, "--headless", "--no-remote", "--profile", profile, f"--remote-debugging-port={port}", "about:blank"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    session = None
    try:
        deadline = time.time() + 60
        address = None
        while time.time() < deadline and address is None:
            line = browser.stdout.readline()
            if not line and browser.poll() is not None:
                break
            match = re.search(r"WebDriver BiDi listening on (ws://\S+)", line)
            if match:
                address = match.group(1)
        assert address, "firefox did not start its WebDriver BiDi listener"
        session = BiDi(address.rstrip("/") + "/session")
        session.call("session.new", capabilities={})
        context = session.call("browsingContext.getTree")["contexts"][0]["context"]
        session.call("browsingContext.setViewport", context=context, viewport={"width": 1366, "height": 900})
        client = redis.Redis(port=server.port)
        for i in range(2000):
            client.set(f"user:{i}", "x" * 64, ex=600)
        session.call("browsingContext.navigate", context=context, url=f"http://127.0.0.1:{http}/", wait="complete")
        session.wait_for(context, "Number(document.body.dataset.updates || 0) >= 3")
        first = session.evaluate(context, "document.querySelector('#chart-memory path.line').getAttribute('d')")
        for n in range(5):
            client.set(f"blob:{n}", b"x" * (8 << 20))
        session.wait_for(context, "(document.body.dataset.alerts || '').includes('memory')")
        session.wait_for(context, "Number(document.body.dataset.updates || 0) >= 8")
        second = session.evaluate(context, "document.querySelector('#chart-memory path.line').getAttribute('d')")
        assert first and second and first != second, "the memory chart did not move"
        assert session.evaluate(context, "document.getElementById('alerts').hidden") is False
        assert "memory used" in session.evaluate(context, "document.getElementById('alert-list').textContent")
        assert session.evaluate(context, "document.getElementById('keys').textContent") == "2,005"
        shot = session.call("browsingContext.captureScreenshot", context=context, origin="document")["data"]
        os.makedirs(ARTIFACTS, exist_ok=True)
        with open(os.path.join(ARTIFACTS, "dashboard-firefox.png"), "wb") as f:
            f.write(base64.b64decode(shot))
        client.close()
    finally:
        if session:
            try:
                session.call("session.end")
            except Exception:
                pass
            session.socket.close()
        browser.kill()
        browser.wait(timeout=10)
        shutil.rmtree(profile, ignore_errors=True)
        server.cleanup()
