"""The dashboard page in a real browser: Debian's chromium, headless, driven by Playwright. It loads while
load runs, its charts update, and the alert banner appears when memory crosses the alert level. The
screenshot is kept in test-artifacts/ (and docs/images/dashboard.png shows one in the README)."""
import os
import shutil
import subprocess
import threading
import time

import pytest
import redis

from support import servers

CHROMIUM = shutil.which("chromium")
ARTIFACTS = os.environ.get("NOVA_TEST_ARTIFACTS", os.path.join(os.path.dirname(__file__), "..", "..", "test-artifacts"))

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - installed by scripts/install-test-deps
    sync_playwright = None


@pytest.mark.skipif(CHROMIUM is None or sync_playwright is None, reason="chromium and playwright are installed by scripts/install-test-deps")
def test_dashboard_updates_and_shows_the_memory_alert():
    http = servers.free_port()
    server = servers.start_nova("--save", "", "--http-port", str(http), "--maxmemory", "64mb", "--alert-memory", "50%",
                                "--slowlog-log-slower-than", "0", "--requirepass", "pw")
    stop = threading.Event()

    def load():
        client = redis.Redis(port=server.port, password="pw")
        i = 0
        while not stop.is_set():
            pipe = client.pipeline(transaction=False)
            for _ in range(50):
                pipe.set(f"user:{i % 2000}", "x" * 64, ex=600)
                pipe.get(f"user:{(i * 7) % 3000}")
                i += 1
            pipe.execute()
            time.sleep(0.01)
        client.close()

    loader = threading.Thread(target=load, daemon=True)
    loader.start()
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
            context = browser.new_context(http_credentials={"username": "default", "password": "pw"},
                                          viewport={"width": 1366, "height": 900},
                                          bypass_csp=True)  # the page forbids eval, which wait_for_function uses
            page = context.new_page()
            errors = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
            page.goto(f"http://127.0.0.1:{http}/")
            page.wait_for_function("Number(document.body.dataset.updates || 0) >= 3", timeout=20000)
            first = page.get_attribute("#chart-ops path.line", "d")
            page.wait_for_function("Number(document.body.dataset.updates || 0) >= 5", timeout=20000)
            second = page.get_attribute("#chart-ops path.line", "d")
            assert first and second and first != second, "the ops/s chart did not move"
            assert int(page.get_attribute("#chart-ops", "data-points")) >= 5
            assert page.text_content("#keys") not in ("–", "0")
            assert page.is_hidden("#alerts")
            assert page.locator("#slowlog tr").count() >= 1

            # Cross the alert level (32 MB of 64 MB): the banner appears within a few polls.
            admin = redis.Redis(port=server.port, password="pw")
            for n in range(5):
                admin.set(f"blob:{n}", b"x" * (8 << 20))
            page.wait_for_function("(document.body.dataset.alerts || '').includes('memory')", timeout=20000)
            page.wait_for_function("Number(document.body.dataset.updates || 0) >= 12", timeout=20000)
            assert page.is_visible("#alerts")
            assert "memory used" in page.text_content("#alert-list")
            assert page.is_visible("#memory-alert")
            os.makedirs(ARTIFACTS, exist_ok=True)
            page.screenshot(path=os.path.join(ARTIFACTS, "dashboard.png"), full_page=True)
            assert not errors, errors
            admin.close()
            browser.close()
    finally:
        stop.set()
        loader.join(timeout=10)
        server.cleanup()
