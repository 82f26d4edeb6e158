"""The server's HTTP listener (`http-port`): /metrics parsed by the Python prometheus-client parser and
compared with Debian's prometheus-redis-exporter scraping the same server; /api/stats; Basic auth with
requirepass and ACL users; the port closed when http-port is 0; alerts as log line, INFO field, metric and
`nova-cache status` exit code."""
import base64
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from support import servers

EXPORTER = shutil.which("prometheus-redis-exporter")
CLI = os.path.join(os.path.dirname(servers.nova_binary()), "nova-cache")


def start(*args, **kwargs):
    http = servers.free_port()
    server = servers.start_nova("--save", "", "--http-port", str(http), *args, **kwargs)
    server.http = http
    return server


def get(server, path, user=None, password=None, timeout=10):
    request = urllib.request.Request(f"http://127.0.0.1:{server.http}{path}")
    if password is not None:
        token = base64.b64encode(f"{user or ''}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    return urllib.request.urlopen(request, timeout=timeout)


def families(text):
    return {family.name: family for family in text_string_to_metric_families(text)}


def sample_value(family, **labels):
    """The value of the family's sample with these labels (a counter's sample is named `<family>_total`)."""
    for sample in family.samples:
        if sample.name in (family.name, family.name + "_total") and all(sample.labels.get(k) == v for k, v in labels.items()):
            return sample.value
    raise KeyError(labels)


def test_metrics_parse_with_redis_exporter_names():
    server = start()
    try:
        r = redis.Redis(port=server.port)
        r.set("k", "v")
        r.get("k")
        r.get("missing")
        redis.Redis(port=server.port, db=3).set("other", "x", ex=100)
        try:
            r.execute_command("NOSUCH")
        except redis.ResponseError:
            pass
        response = get(server, "/metrics")
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        parsed = families(response.read().decode())
        # prometheus_client strips the _total suffix of counters from the family name.
        assert parsed["redis_commands_processed"].type == "counter"
        assert parsed["redis_keyspace_hits"].type == "counter"
        assert sample_value(parsed["redis_keyspace_hits"]) == 1
        assert sample_value(parsed["redis_keyspace_misses"]) == 1
        assert parsed["redis_memory_used_bytes"].type == "gauge"
        assert sample_value(parsed["redis_memory_used_bytes"]) > 0
        assert sample_value(parsed["redis_db_keys"], db="db0") == 1
        assert sample_value(parsed["redis_db_keys"], db="db3") == 1
        assert sample_value(parsed["redis_db_keys_expiring"], db="db3") == 1
        assert sample_value(parsed["redis_db_keys"], db="db15") == 0
        assert sample_value(parsed["redis_commands"], cmd="get") == 2
        assert sample_value(parsed["redis_commands_duration_seconds"], cmd="get") > 0
        assert sample_value(parsed["redis_errors"], err="ERR") == 1
        assert parsed["redis_latency_percentiles_usec"].type == "summary"
        assert sample_value(parsed["redis_up"]) == 1
        info = r.info("server")
        assert sample_value(parsed["redis_instance_info"], redis_version=info["redis_version"], tcp_port=str(server.port)) == 1
        assert "nova_alert_firing" in parsed
        r.close()
    finally:
        server.cleanup()


@pytest.mark.skipif(EXPORTER is None, reason="prometheus-redis-exporter is installed by scripts/install-test-deps")
def test_same_names_and_types_as_prometheus_redis_exporter(tmp_path):
    """Every series redis_exporter derives from a server's INFO, SLOWLOG and latencystats exists in our
    /metrics with the same type (only the exporter's own bookkeeping differs), so existing Grafana
    dashboards and alert rules work unchanged."""
    server = start("--slowlog-log-slower-than", "0")
    port = servers.free_port()
    exporter = subprocess.Popen(
        [EXPORTER, "-redis.addr", f"redis://127.0.0.1:{server.port}", "-web.listen-address", f"127.0.0.1:{port}"],
        stdout=open(tmp_path / "exporter.log", "w"), stderr=subprocess.STDOUT)
    try:
        r = redis.Redis(port=server.port)
        r.set("k", "v", ex=100)
        r.get("k")
        try:
            r.execute_command("NOSUCH")
        except redis.ResponseError:
            pass
        theirs = ""
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                theirs = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
                break
            except OSError:
                time.sleep(0.1)
        ours = get(server, "/metrics").read().decode()
        their_types = {f.name: f.type for f in text_string_to_metric_families(theirs)
                       if f.name.startswith("redis_") and not f.name.startswith(("redis_exporter_", "redis_target_scrape"))}
        our_types = {f.name: f.type for f in text_string_to_metric_families(ours)}
        own_bookkeeping = {"redis_config_io_threads", "redis_last_key_groups_scrape_duration_milliseconds"}
        missing = {name for name in their_types if name not in our_types} - own_bookkeeping
        assert not missing, f"redis_exporter has series we lack: {sorted(missing)}"
        wrong = {name: (their_types[name], our_types[name]) for name in their_types if name in our_types and their_types[name] != our_types[name]}
        assert not wrong, f"types differ (theirs, ours): {wrong}"
        r.close()
    finally:
        exporter.terminate()
        exporter.wait(timeout=10)
        server.cleanup()


def test_api_stats_and_dashboard_assets():
    server = start("--maxmemory", "64mb", "--alert-memory", "90%")
    try:
        r = redis.Redis(port=server.port)
        r.set("a", "1")
        r.get("a")
        stats = json.loads(get(server, "/api/stats").read())
        assert stats["keyspace_hits"] == 1
        assert stats["memory"]["max"] == 64 << 20
        assert stats["memory"]["alert_level"] == int((64 << 20) * 0.9)
        assert stats["databases"] == [{"db": 0, "keys": 1, "expires": 0, "avg_ttl_ms": 0}]
        assert stats["server"]["port"] == server.port
        assert stats["alerts"] == []
        page = get(server, "/")
        assert page.headers["Content-Type"] == "text/html; charset=utf-8"
        assert "script-src 'self'" in page.headers["Content-Security-Policy"]
        html = page.read().decode()
        assert "dashboard.js" in html and "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
        script = get(server, "/dashboard.js").read().decode()
        assert "innerHTML" not in script  # server data is only ever set as text
        assert get(server, "/dashboard.css").headers["Content-Type"].startswith("text/css")
        with pytest.raises(urllib.error.HTTPError) as missing:
            get(server, "/nope")
        assert missing.value.code == 404
        request = urllib.request.Request(f"http://127.0.0.1:{server.http}/metrics", data=b"x", method="POST")
        with pytest.raises(urllib.error.HTTPError) as post:
            urllib.request.urlopen(request, timeout=5)
        assert post.value.code == 405
        r.close()
    finally:
        server.cleanup()


def test_password_required_when_set():
    server = start("--requirepass", "s3cret")
    try:
        for kwargs in ({}, {"user": "default", "password": "wrong"}, {"user": "nobody", "password": "s3cret"}):
            with pytest.raises(urllib.error.HTTPError) as refused:
                get(server, "/metrics", **kwargs)
            assert refused.value.code == 401
            assert refused.value.headers["WWW-Authenticate"].startswith("Basic ")
        for path in ("/", "/api/stats", "/dashboard.js"):
            with pytest.raises(urllib.error.HTTPError):
                get(server, path)
        assert get(server, "/metrics", user="default", password="s3cret").status == 200
        assert get(server, "/api/stats", user="", password="s3cret").status == 200
        admin = redis.Redis(port=server.port, password="s3cret")
        admin.acl_setuser("grafana", enabled=True, passwords=["+view"], commands=["+info"])
        assert get(server, "/metrics", user="grafana", password="view").status == 200
        admin.acl_setuser("grafana", enabled=False)
        with pytest.raises(urllib.error.HTTPError):
            get(server, "/metrics", user="grafana", password="view")
        admin.close()
    finally:
        server.cleanup()


def test_port_closed_when_zero():
    server = servers.start_nova("--save", "")
    try:
        assert redis.Redis(port=server.port).config_get("http-port") == {"http-port": "0"}
        assert "connections http" not in server.log()
    finally:
        server.cleanup()
    # And a port given is refused by CONFIG SET (it is read at start-up).
    server = start()
    try:
        with pytest.raises(redis.ResponseError, match="immutable"):
            redis.Redis(port=server.port).config_set("http-port", 0)
        with socket.create_connection(("127.0.0.1", server.http), timeout=5):
            pass
    finally:
        server.cleanup()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.http), timeout=2).close()


def test_memory_alert_fires_once_and_resolves(tmp_path):
    server = start("--maxmemory", "100mb", "--alert-memory", "4mb")
    try:
        r = redis.Redis(port=server.port)
        status = subprocess.run([CLI, "status", "--url", f"redis://127.0.0.1:{server.port}"], capture_output=True, text=True)
        assert status.returncode == 0, status.stdout + status.stderr
        r.set("big", "x" * (6 << 20))
        deadline = time.time() + 10
        while time.time() < deadline and r.info("nova").get("alert_memory") != "firing":
            time.sleep(0.2)
        info = r.info("nova")
        assert info["alert_memory"] == "firing" and info["alerts_firing"] == 1
        assert "reached the alert level 4.00M" in info["alert_memory_reason"]
        parsed = families(get(server, "/metrics").read().decode())
        assert sample_value(parsed["nova_alert_firing"], alert="memory") == 1
        assert json.loads(get(server, "/api/stats").read())["alerts"][0]["alert"] == "memory"
        status = subprocess.run([CLI, "status", "--url", f"redis://127.0.0.1:{server.port}"], capture_output=True, text=True)
        assert status.returncode == 2 and "alert memory: memory used" in status.stdout, status.stdout
        time.sleep(2)  # still firing: logged once only
        assert server.log().count("Alert memory firing") == 1
        r.delete("big")
        deadline = time.time() + 10
        while time.time() < deadline and r.info("nova").get("alert_memory") != "ok":
            time.sleep(0.2)
        assert r.info("nova")["alert_memory"] == "ok"
        assert server.log().count("Alert memory resolved") == 1
        r.close()
    finally:
        server.cleanup()


def test_rejected_connections_alert():
    server = start("--maxclients", "2")
    try:
        held = [redis.Redis(port=server.port) for _ in range(2)]
        for client in held:
            client.ping()
        refused = redis.Redis(port=server.port)
        with pytest.raises(redis.exceptions.ConnectionError):
            refused.ping()
        deadline = time.time() + 10
        state = None
        while time.time() < deadline:
            state = json.loads(get(server, "/api/stats").read())["alerts"]
            if state:
                break
            time.sleep(0.2)
        assert state and state[0]["alert"] == "rejected_connections", state
        assert "Alert rejected_connections firing: 1 connection rejected" in server.log()
        for client in held:
            client.close()
    finally:
        server.cleanup()


def test_snapshot_copy_on_write_segments_during_a_background_save():
    server = start("--enable-debug-command", "yes")
    try:
        r = redis.Redis(port=server.port)
        r.execute_command("DEBUG", "POPULATE", 2_000_000)
        assert r.info("nova")["snapshot_in_progress"] == 0
        # BGSAVE, the writes and the reading in one round trip: they run while the save thread has only
        # begun writing 2,000,000 keys.
        pipe = r.pipeline(transaction=False)
        pipe.bgsave()
        for i in range(0, 2_000_000, 997):
            pipe.set(f"key:{i}", "changed")
        pipe.info("nova")
        info = pipe.execute()[-1]
        assert info["snapshot_in_progress"] == 1
        assert info["snapshot_segments_copied"] > 100
        # The same figure in /metrics (the save may have ended by now: then it is 0).
        parsed = families(get(server, "/metrics").read().decode())
        assert sample_value(parsed["nova_snapshot_segments_copied"]) in (0, info["snapshot_segments_copied"]) or \
            sample_value(parsed["nova_snapshot_segments_copied"]) > 100
        while r.info("persistence")["rdb_bgsave_in_progress"] == 1:
            time.sleep(0.1)
        assert r.info("nova")["snapshot_segments_copied"] == 0
        r.close()
    finally:
        server.cleanup()


def wait_for_alert(r, name, state, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline and r.info("nova").get(f"alert_{name}") != state:
        time.sleep(0.2)
    return r.info("nova").get(f"alert_{name}") == state


def test_failed_background_save_and_low_hit_ratio_alerts(tmp_path):
    datadir = tmp_path / "data"
    datadir.mkdir()
    server = start("--dir", str(datadir), "--alert-hit-ratio", "80", "--alert-hit-ratio-window", "10")
    try:
        r = redis.Redis(port=server.port)
        r.set("a", "1")
        assert r.info("nova")["alert_bgsave"] == "ok" and r.info("nova")["alert_hit_ratio"] == "ok"
        shutil.rmtree(datadir)
        r.bgsave()
        assert wait_for_alert(r, "bgsave", "firing")
        assert "Alert bgsave firing: the last background save failed" in server.log()
        status = subprocess.run([CLI, "status", "--url", f"redis://127.0.0.1:{server.port}"], capture_output=True, text=True)
        assert status.returncode == 2 and "last background save failed" in status.stdout
        datadir.mkdir()
        r.bgsave()
        assert wait_for_alert(r, "bgsave", "ok")
        assert "Alert bgsave resolved" in server.log()
        # 150 lookups, 20% hits: under 80% with enough lookups in the window.
        for i in range(150):
            r.get("a" if i % 5 == 0 else f"missing:{i}")
        assert wait_for_alert(r, "hit_ratio", "firing")
        assert "below 80.0%" in r.info("nova")["alert_hit_ratio_reason"]
        for _ in range(2000):
            r.get("a")
        assert wait_for_alert(r, "hit_ratio", "ok")
        r.close()
    finally:
        server.cleanup()
