"""RDB snapshots: round trips through nova-cache-server and redis-server in both directions, point-in-time
BGSAVE, save rules, MISCONF, loading, crashes."""
import os
import shutil
import signal
import subprocess
import tempfile
import time

import pytest
import redis

from support import resp, servers
from support.datasets import check_dataset, random_dataset


def wait_for(predicate, timeout=10, interval=0.05):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


def test_save_restart_roundtrip():
    workdir = tempfile.mkdtemp()
    server = servers.start_nova(workdir=workdir)
    client = redis.Redis(port=server.port)
    expected = random_dataset(client)
    assert client.save()
    server.stop()
    again = servers.start_nova(workdir=workdir)
    try:
        check_dataset(again.port, expected)
        info = redis.Redis(port=again.port).info("persistence")
        assert info["rdb_last_load_keys_loaded"] == len(expected)
    finally:
        again.cleanup()


def test_nova_snapshot_loads_into_redis_and_passes_check():
    workdir = tempfile.mkdtemp()
    server = servers.start_nova(workdir=workdir)
    expected = random_dataset(redis.Redis(port=server.port))
    redis.Redis(port=server.port).save()
    server.stop()
    path = os.path.join(workdir, "dump.rdb")
    check = subprocess.run(["redis-check-rdb", path], capture_output=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    assert b"RDB looks OK" in check.stdout
    reference = servers.start_redis(workdir=workdir)
    try:
        assert redis.Redis(port=reference.port).dbsize() == 2000
        check_dataset(reference.port, expected)
    finally:
        reference.cleanup()


def test_redis_snapshot_loads_into_nova():
    workdir = tempfile.mkdtemp()
    reference = servers.start_redis(workdir=workdir)
    expected = random_dataset(redis.Redis(port=reference.port))
    redis.Redis(port=reference.port).save()
    reference.stop()
    server = servers.start_nova(workdir=workdir)
    try:
        check_dataset(server.port, expected)
    finally:
        server.cleanup()


def test_bgsave_is_a_point_in_time_image():
    workdir = tempfile.mkdtemp()
    server = servers.start_nova("--save", "", workdir=workdir)
    client = redis.Redis(port=server.port)
    pipe = client.pipeline(transaction=False)
    for i in range(200_000):
        pipe.set(f"p:{i}", "before")
    pipe.execute()
    assert client.bgsave()
    # Overwrite everything while the snapshot is written.
    pipe = client.pipeline(transaction=False)
    for i in range(200_000):
        pipe.set(f"p:{i}", "after")
    pipe.set("new-key", "x")
    pipe.execute()
    assert wait_for(lambda: client.info("persistence")["rdb_bgsave_in_progress"] == 0)
    assert client.info("persistence")["rdb_last_bgsave_status"] == "ok"
    assert client.get("p:7") == b"after"
    server.stop()
    os.environ.pop("UNUSED", None)
    again = servers.start_nova("--save", "", workdir=workdir)
    try:
        c = redis.Redis(port=again.port)
        assert c.dbsize() == 200_000
        assert c.get("new-key") is None
        assert {c.get(f"p:{i}") for i in range(0, 200_000, 997)} == {b"before"}
    finally:
        again.cleanup()


def test_save_rules_trigger_background_saves():
    server = servers.start_nova("--save", "1 1")
    try:
        client = redis.Redis(port=server.port)
        client.set("a", "1")
        path = os.path.join(server.workdir, "dump.rdb")
        assert wait_for(lambda: os.path.exists(path), timeout=5)
        assert wait_for(lambda: client.info("persistence")["rdb_changes_since_last_save"] == 0)
        assert client.lastsave().timestamp() > time.time() - 10
    finally:
        server.cleanup()


def test_failed_save_reports_and_refuses_writes_until_fixed():
    workdir = tempfile.mkdtemp()
    datadir = os.path.join(workdir, "data")
    os.mkdir(datadir)
    server = servers.start_nova("--dir", datadir, "--save", "3600 1")
    try:
        client = redis.Redis(port=server.port)
        client.set("a", "1")
        shutil.rmtree(datadir)
        assert client.bgsave()
        assert wait_for(lambda: client.info("persistence")["rdb_last_bgsave_status"] == "err")
        with pytest.raises(redis.ResponseError, match="MISCONF"):
            client.set("b", "2")
        assert client.get("a") == b"1", "reads still work"
        os.mkdir(datadir)
        assert client.bgsave()
        assert wait_for(lambda: client.info("persistence")["rdb_last_bgsave_status"] == "ok")
        assert client.set("b", "2")
        with pytest.raises(redis.ResponseError):
            shutil.rmtree(datadir)
            client.save()
        os.mkdir(datadir)
    finally:
        server.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)


def test_shutdown_and_sigterm_save_when_rules_are_set():
    workdir = tempfile.mkdtemp()
    server = servers.start_nova(workdir=workdir)
    redis.Redis(port=server.port).set("by-sigterm", "1")
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=20) == 0
    server = servers.start_nova(workdir=workdir)
    client = redis.Redis(port=server.port)
    assert client.get("by-sigterm") == b"1"
    client.set("by-shutdown", "1")
    client.shutdown(save=True)
    assert server.process.wait(timeout=20) == 0
    server = servers.start_nova(workdir=workdir)
    try:
        assert redis.Redis(port=server.port).get("by-shutdown") == b"1"
    finally:
        server.cleanup()


def test_expired_keys_are_not_loaded():
    workdir = tempfile.mkdtemp()
    server = servers.start_nova(workdir=workdir)
    client = redis.Redis(port=server.port)
    client.set("short", "1", px=800)
    client.set("long", "1", ex=1000)
    client.save()
    server.stop()
    time.sleep(1)
    again = servers.start_nova(workdir=workdir)
    try:
        c = redis.Redis(port=again.port)
        assert c.dbsize() == 1
        assert c.info("persistence")["rdb_last_load_keys_expired"] == 1
    finally:
        again.cleanup()


def test_corrupt_snapshot_refuses_to_start_and_is_kept():
    workdir = tempfile.mkdtemp()
    server = servers.start_nova(workdir=workdir)
    random_dataset(redis.Redis(port=server.port), count=200, dbs=(0,))
    redis.Redis(port=server.port).save()
    server.stop()
    path = os.path.join(workdir, "dump.rdb")
    with open(path, "r+b") as f:
        f.seek(os.path.getsize(path) // 2)
        byte = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([byte[0] ^ 0xFF]))
    with open(path, "rb") as f:
        corrupted = f.read()
    process = subprocess.Popen([servers.nova_binary(), "--port", str(servers.free_port()), "--dir", workdir],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output, _ = process.communicate(timeout=20)
    assert process.returncode != 0
    assert b"Fatal error loading the DB" in output
    with open(path, "rb") as f:
        assert f.read() == corrupted


def test_kill_during_bgsave_keeps_previous_snapshot():
    workdir = tempfile.mkdtemp()
    server = servers.start_nova("--save", "", workdir=workdir)
    client = redis.Redis(port=server.port)
    client.set("first", "1")
    client.save()
    pipe = client.pipeline(transaction=False)
    for i in range(300_000):
        pipe.set(f"bulk:{i}", "v" * 50)
    pipe.execute()
    client.bgsave()
    server.kill()
    again = servers.start_nova("--save", "", workdir=workdir)
    try:
        c = redis.Redis(port=again.port)
        # Either the old snapshot or the complete new one, never a torn file.
        assert c.get("first") == b"1"
        assert c.dbsize() in (1, 300_001)
    finally:
        again.cleanup()


def test_clients_get_loading_while_a_large_snapshot_loads():
    workdir = tempfile.mkdtemp()
    reference = servers.start_redis("--enable-debug-command", "yes", workdir=workdir)
    ref = redis.Redis(port=reference.port)
    ref.execute_command("DEBUG", "POPULATE", "3000000", "key", "64")
    ref.save()
    reference.stop()
    port = servers.free_port()
    process = subprocess.Popen([servers.nova_binary(), "--port", str(port), "--dir", workdir],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        # A raw client: redis-py retries -LOADING on its own.
        seen_loading = False
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                conn = resp.Connection(port)
            except OSError:
                time.sleep(0.01)
                continue
            reply = conn.call("PING")
            if reply == "PONG":
                break
            assert reply == resp.Error("LOADING Redis is loading the dataset in memory")
            seen_loading = True
            fields = dict(line.split(":", 1) for line in conn.call("INFO", "persistence").decode().split("\r\n")
                          if ":" in line)
            if fields["loading"] == "0":  # the load ended between the two calls: the server must answer now
                assert conn.call("PING") == "PONG"
                break
            assert "loading_loaded_perc" in fields
            conn.close()
            time.sleep(0.01)
        assert seen_loading, "the load finished before any client saw -LOADING"
        assert redis.Redis(port=port).dbsize() == 3_000_000
    finally:
        process.terminate()
        process.wait(timeout=30)
        shutil.rmtree(workdir, ignore_errors=True)
