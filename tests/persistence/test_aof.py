"""The append-only file: replay, durability under kill -9, rewrites, truncation and corruption, and
interoperability with redis-server 7.0's multi-part AOF."""
import os
import random
import shutil
import subprocess
import tempfile
import threading
import time

import pytest
import redis

from support import servers
from support.datasets import capture, check_dataset, random_dataset
from test_snapshots import wait_for


def aof_dir(workdir):
    return os.path.join(workdir, "appendonlydir")


def test_aof_roundtrip_with_absolute_expiry():
    workdir = tempfile.mkdtemp()
    server = servers.start_nova("--appendonly", "yes", "--save", "", workdir=workdir)
    client = redis.Redis(port=server.port)
    expected = random_dataset(client, count=1000)
    client.set("ttl-100", "x", ex=100)
    client.incrbyfloat("float", "10.5")
    client.getdel("k:0:1")
    client.lmove("k:0:6", "moved", "LEFT", "RIGHT")
    client.zincrby("k:0:8", 2.5, "z0")
    expected = capture(server.port)
    server.kill()
    time.sleep(2)
    again = servers.start_nova("--appendonly", "yes", "--save", "", workdir=workdir)
    try:
        check_dataset(again.port, expected)
        c = redis.Redis(port=again.port)
        assert 96 <= c.ttl("ttl-100") <= 98, "a relative TTL is logged as an absolute time"
        assert c.get("float") == b"10.5"
        assert c.get("k:0:1") is None
    finally:
        again.cleanup()


def write_until_killed(port, server, policy_seconds):
    """Writes from two threads, records acknowledged writes, kills the server mid-load."""
    acknowledged = []
    lock = threading.Lock()
    stop = threading.Event()

    def writer(prefix):
        c = redis.Redis(port=port, socket_timeout=5)
        i = 0
        while not stop.is_set():
            key = f"{prefix}:{i}"
            try:
                c.set(key, i)
            except (redis.ConnectionError, redis.TimeoutError):
                return
            with lock:
                acknowledged.append((key, time.time()))
            i += 1

    threads = [threading.Thread(target=writer, args=(p,)) for p in ("a", "b")]
    for t in threads:
        t.start()
    time.sleep(1.5)
    killed_at = time.time()
    server.kill()
    stop.set()
    for t in threads:
        t.join()
    return acknowledged, killed_at


def test_appendfsync_always_keeps_every_acknowledged_write():
    workdir = tempfile.mkdtemp()
    server = servers.start_nova("--appendonly", "yes", "--appendfsync", "always", "--save", "", workdir=workdir)
    acknowledged, _ = write_until_killed(server.port, server, 0)
    assert len(acknowledged) > 100
    again = servers.start_nova("--appendonly", "yes", "--save", "", workdir=workdir)
    try:
        c = redis.Redis(port=again.port)
        pipe = c.pipeline(transaction=False)
        for key, _ in acknowledged:
            pipe.exists(key)
        missing = [key for (key, _), present in zip(acknowledged, pipe.execute()) if not present]
        assert missing == [], f"{len(missing)} acknowledged writes lost"
    finally:
        again.cleanup()


def test_appendfsync_everysec_loses_at_most_two_seconds():
    workdir = tempfile.mkdtemp()
    server = servers.start_nova("--appendonly", "yes", "--appendfsync", "everysec", "--save", "", workdir=workdir)
    acknowledged, killed_at = write_until_killed(server.port, server, 1)
    again = servers.start_nova("--appendonly", "yes", "--save", "", workdir=workdir)
    try:
        c = redis.Redis(port=again.port)
        pipe = c.pipeline(transaction=False)
        for key, _ in acknowledged:
            pipe.exists(key)
        lost = [when for (key, when), present in zip(acknowledged, pipe.execute()) if not present]
        assert all(killed_at - when <= 2.0 for when in lost), "everysec lost writes older than 2 s"
    finally:
        again.cleanup()


def test_bgrewriteaof_and_kill_during_rewrite():
    workdir = tempfile.mkdtemp()
    server = servers.start_nova("--appendonly", "yes", "--save", "", workdir=workdir)
    client = redis.Redis(port=server.port)
    pipe = client.pipeline(transaction=False)
    for i in range(100_000):
        pipe.set(f"r:{i}", "v" * 40)
    pipe.execute()
    assert client.bgrewriteaof()
    assert wait_for(lambda: client.info("persistence")["aof_rewrite_in_progress"] == 0)
    assert client.info("persistence")["aof_rewrites"] == 1
    client.set("after-rewrite", "1")
    with open(os.path.join(aof_dir(workdir), "appendonly.aof.manifest")) as f:
        assert "seq 2 type b" in f.read()
    # Kill in the middle of a second rewrite: the files named by the manifest still load.
    pipe = client.pipeline(transaction=False)
    for i in range(200_000):
        pipe.set(f"s:{i}", "w" * 40)
    pipe.execute()
    client.bgrewriteaof()
    client.set("during-rewrite", "1")
    server.kill()
    again = servers.start_nova("--appendonly", "yes", "--save", "", workdir=workdir)
    try:
        c = redis.Redis(port=again.port)
        assert c.dbsize() == 300_002
        assert c.get("after-rewrite") == b"1" and c.get("during-rewrite") == b"1"
    finally:
        again.cleanup()


def test_truncated_last_command_is_dropped():
    workdir = tempfile.mkdtemp()
    server = servers.start_nova("--appendonly", "yes", "--save", "", workdir=workdir)
    client = redis.Redis(port=server.port)
    client.set("a", "1")
    client.set("b", "2")
    server.stop()
    incremental = os.path.join(aof_dir(workdir), "appendonly.aof.1.incr.aof")
    with open(incremental, "ab") as f:
        f.write(b"*3\r\n$3\r\nSET\r\n$1\r\nc\r\n$5\r\nhal")
    again = servers.start_nova("--appendonly", "yes", "--save", "", workdir=workdir)
    try:
        c = redis.Redis(port=again.port)
        assert c.get("a") == b"1" and c.get("b") == b"2" and c.get("c") is None
        assert "short read while loading the AOF" in again.log()
        with open(incremental, "rb") as f:
            assert not f.read().endswith(b"hal")
    finally:
        again.cleanup()


def test_corrupt_command_refuses_to_start_naming_file_and_offset():
    workdir = tempfile.mkdtemp()
    server = servers.start_nova("--appendonly", "yes", "--save", "", workdir=workdir)
    client = redis.Redis(port=server.port)
    client.set("a", "1")
    client.set("b", "2")
    server.stop()
    incremental = os.path.join(aof_dir(workdir), "appendonly.aof.1.incr.aof")
    with open(incremental, "rb") as f:
        data = f.read()
    position = data.index(b"*3\r\n$3\r\nSET\r\n$1\r\nb")
    corrupted = data[:position] + b"#" + data[position + 1:]
    with open(incremental, "wb") as f:
        f.write(corrupted)
    result = subprocess.run([servers.nova_binary(), "--port", str(servers.free_port()), "--dir", workdir,
                             "--appendonly", "yes"], capture_output=True, timeout=30)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert b"appendonly.aof.1.incr.aof" in output and f"at byte {position}".encode() in output
    with open(incremental, "rb") as f:
        assert f.read() == corrupted


def test_aof_wins_over_rdb_and_can_be_switched_on_at_run_time():
    workdir = tempfile.mkdtemp()
    server = servers.start_nova(workdir=workdir)
    client = redis.Redis(port=server.port)
    client.set("where", "rdb")
    client.save()
    assert client.config_set("appendonly", "yes")
    assert wait_for(lambda: client.info("persistence")["aof_rewrite_in_progress"] == 0)
    client.set("where", "aof")
    server.kill()
    again = servers.start_nova("--appendonly", "yes", workdir=workdir)
    try:
        assert redis.Redis(port=again.port).get("where") == b"aof"
    finally:
        again.cleanup()


def test_automatic_rewrite():
    server = servers.start_nova("--appendonly", "yes", "--save", "", "--auto-aof-rewrite-min-size", "1mb",
                                "--auto-aof-rewrite-percentage", "100")
    try:
        client = redis.Redis(port=server.port)
        for round in range(5):
            pipe = client.pipeline(transaction=False)
            for i in range(20_000):
                pipe.set(f"auto:{i}", "z" * 50)
            pipe.execute()
        assert wait_for(lambda: client.info("persistence")["aof_rewrites"] >= 1, timeout=10)
    finally:
        server.cleanup()


def test_redis_aof_loads_into_nova_and_back():
    workdir = tempfile.mkdtemp()
    reference = servers.start_redis("--appendonly", "yes", workdir=workdir)
    expected = random_dataset(redis.Redis(port=reference.port), count=500)
    reference.stop()
    server = servers.start_nova("--appendonly", "yes", "--save", "", workdir=workdir)
    client = redis.Redis(port=server.port)
    check_dataset(server.port, expected)
    client.set("from-nova", "1")
    client.bgrewriteaof()
    assert wait_for(lambda: client.info("persistence")["aof_rewrite_in_progress"] == 0)
    client.set("after-nova-rewrite", "1")
    expected = capture(server.port)
    server.stop()
    check = subprocess.run(["redis-check-aof", os.path.join(aof_dir(workdir), "appendonly.aof.manifest")],
                           capture_output=True, timeout=60)
    assert check.returncode == 0, check.stdout
    reference = servers.start_redis("--appendonly", "yes", workdir=workdir)
    try:
        check_dataset(reference.port, expected)
        r = redis.Redis(port=reference.port)
        assert r.get("from-nova") == b"1" and r.get("after-nova-rewrite") == b"1"
    finally:
        reference.cleanup()


def test_transactions_are_logged_whole_and_an_unfinished_one_is_dropped():
    workdir = tempfile.mkdtemp()
    server = servers.start_nova("--appendonly", "yes", "--appendfsync", "always", "--save", "", workdir=workdir)
    client = redis.Redis(port=server.port)
    with client.pipeline() as pipe:
        pipe.set("a", 1).incr("a").rpush("l", "x")
        pipe.execute()
    with client.pipeline() as pipe:
        pipe.set("single", 1)  # one logged command: no MULTI around it
        pipe.execute()
    server.kill()
    incremental = [name for name in os.listdir(aof_dir(workdir)) if ".incr." in name][-1]
    path = os.path.join(aof_dir(workdir), incremental)
    with open(path, "rb") as f:
        logged = f.read()
    assert logged.count(b"MULTI") == 1 and logged.count(b"EXEC") == 1
    # A crash in the middle of writing a transaction: MULTI and one command, no EXEC.
    with open(path, "ab") as f:
        f.write(b"*1\r\n$5\r\nMULTI\r\n*3\r\n$3\r\nSET\r\n$4\r\nlost\r\n$1\r\n1\r\n")
    again = servers.start_nova("--appendonly", "yes", "--save", "", workdir=workdir)
    try:
        c = redis.Redis(port=again.port)
        assert c.get("a") == b"2" and c.lrange("l", 0, -1) == [b"x"] and c.get("single") == b"1"
        assert c.get("lost") is None
        assert os.path.getsize(path) == len(logged), "the unfinished transaction is cut from the file"
        assert "Revert incomplete MULTI/EXEC transaction" in again.log()
    finally:
        again.cleanup()
