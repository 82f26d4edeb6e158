"""`nova-cache dashboard`: the same page, /api/stats and /metrics served locally for any Redis-protocol
server, here Debian's redis-server (built from INFO and SLOWLOG polling), with alerts evaluated by the CLI."""
import json
import os
import subprocess
import time
import urllib.error
import urllib.request
import base64

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from support import servers

CLI = os.path.join(os.path.dirname(servers.nova_binary()), "nova-cache")


def serve(url, *args):
    port = servers.free_port()
    process = subprocess.Popen([CLI, "dashboard", "--url", url, "--port", str(port), "--seconds", "60", *args],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = process.stdout.readline()
    assert f"http://127.0.0.1:{port}/" in line, line + process.stderr.read() if process.poll() is not None else line
    return process, port


def fetch(port, path, password=None):
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if password:
        request.add_header("Authorization", "Basic " + base64.b64encode(f"any:{password}".encode()).decode())
    return urllib.request.urlopen(request, timeout=10)


def test_dashboard_for_a_plain_redis_server():
    ref = servers.start_redis("--maxmemory", "64mb")
    process = None
    try:
        r = redis.Redis(port=ref.port)
        r.set("k", "v")
        r.get("k")
        r.get("missing")
        process, port = serve(f"redis://127.0.0.1:{ref.port}", "--memory-warn", "1mb")
        stats = json.loads(fetch(port, "/api/stats").read())
        assert stats["server"]["port"] == ref.port and stats["server"]["nova_cache_version"] == ""
        assert stats["keyspace_hits"] == 1 and stats["keyspace_misses"] == 1
        assert stats["databases"][0]["keys"] == 1
        # redis-server's used memory (about 1 MB when idle) against --memory-warn 1mb: set a value to be sure.
        r.set("blob", "x" * (2 << 20))
        deadline = time.time() + 10
        while time.time() < deadline and not stats["alerts"]:
            time.sleep(0.3)
            stats = json.loads(fetch(port, "/api/stats").read())
        assert [a["alert"] for a in stats["alerts"]] == ["memory"]
        families = {f.name: f for f in text_string_to_metric_families(fetch(port, "/metrics").read().decode())}
        assert families["redis_keyspace_hits"].type == "counter"
        assert any(s.labels.get("cmd") == "get" for s in families["redis_commands"].samples)
        assert any(s.labels == {"alert": "memory"} and s.value == 1 for s in families["nova_alert_firing"].samples)
        assert "<svg" in fetch(port, "/").read().decode()
        r.close()
    finally:
        if process:
            process.terminate()
            process.wait(timeout=10)
        ref.cleanup()


def test_dashboard_shows_a_nova_servers_own_alerts_and_asks_for_its_password():
    nova = servers.start_nova("--save", "", "--maxmemory", "100mb", "--alert-memory", "1mb", "--requirepass", "pw")
    process = None
    try:
        redis.Redis(port=nova.port, password="pw").set("blob", "x" * (2 << 20))
        process, port = serve(f"redis://:pw@127.0.0.1:{nova.port}", "--http-password", "local")
        with pytest.raises(urllib.error.HTTPError) as refused:
            fetch(port, "/api/stats")
        assert refused.value.code == 401
        deadline = time.time() + 10
        alerts = []
        while time.time() < deadline and not alerts:
            alerts = json.loads(fetch(port, "/api/stats", password="local").read())["alerts"]
            time.sleep(0.3)
        assert alerts and alerts[0]["alert"] == "memory" and alerts[0]["message"].endswith("(server)")
    finally:
        if process:
            process.terminate()
            process.wait(timeout=10)
        nova.cleanup()


def test_dashboard_refuses_a_network_address_without_a_password():
    result = subprocess.run([CLI, "dashboard", "--bind", "0.0.0.0", "--seconds", "1"], capture_output=True, text=True)
    assert result.returncode != 0 and "--http-password" in result.stderr
