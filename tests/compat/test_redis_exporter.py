"""Debian's prometheus-redis-exporter (the widely used redis_exporter) scraping nova-cache-server: every
command it sends is known (no "unknown command" in its debug log), the scrape succeeds, and the metrics
it builds from INFO, SLOWLOG, LATENCY LATEST and INFO latencystats carry our figures."""
import shutil
import subprocess
import time
import urllib.request

import pytest

from support import resp, servers

EXPORTER = shutil.which("prometheus-redis-exporter")


@pytest.mark.skipif(EXPORTER is None, reason="prometheus-redis-exporter is installed by scripts/install-test-deps")
def test_redis_exporter_scrapes_without_unknown_commands(tmp_path):
    nova = servers.start_nova("--save", "", "--latency-monitor-threshold", "1", "--slowlog-log-slower-than", "0")
    port = servers.free_port()
    log = open(tmp_path / "exporter.log", "w")
    exporter = subprocess.Popen(
        [EXPORTER, "-redis.addr", f"redis://127.0.0.1:{nova.port}", "-web.listen-address", f"127.0.0.1:{port}",
         "-debug", "-include-system-metrics"],
        stdout=log, stderr=subprocess.STDOUT)
    try:
        conn = resp.Connection(nova.port)
        conn.call("SET", "k", "v")
        conn.call("GET", "k")
        conn.call("GET", "missing")
        conn.close()
        metrics = ""
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
                break
            except OSError:
                time.sleep(0.1)
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()  # a second scrape
    finally:
        exporter.terminate()
        exporter.wait(timeout=10)
        log.close()
        nova.cleanup()
    text = (tmp_path / "exporter.log").read_text()
    assert "unknown command" not in text.lower()
    lines = {line.split(" ")[0]: line.rsplit(" ", 1)[1] for line in metrics.splitlines() if line and not line.startswith("#")}
    assert lines["redis_up"] == "1"
    assert lines['redis_exporter_last_scrape_error{err=""}'] == "0"
    assert float(lines["redis_keyspace_hits_total"]) == 1 and float(lines["redis_keyspace_misses_total"]) == 1
    assert float(lines["redis_slowlog_length"]) >= 3
    assert 'redis_commands_total{cmd="get"}' in lines
    assert any(name.startswith('redis_latency_percentiles_usec{cmd="get"') for name in lines)
    assert float(lines["redis_memory_used_bytes"]) > 0
