"""Random command streams over every type, persisted and reloaded: whatever the writer (nova-cache-server or
redis-server) logged in its AOF or wrote in its snapshot, both servers load to the same keyspace, values
and encodings alike, equal to what the writer held when it was killed."""
import os
import random
import shutil
import subprocess
import tempfile

import pytest
import redis

from support import resp, servers
from support.command_streams import Generator
from support.datasets import as_replayed, capture, check_dataset
from test_snapshots import wait_for

STARTERS = {"nova": servers.start_nova, "redis": servers.start_redis}


def run_stream(port, rng, count, segment=1500):
    """Sends `count` random commands; after every `segment` of them the stream's keys are renamed aside
    (RENAME is logged too), so the keyspace accumulates results of every type instead of drifting to
    whatever the last cross-type commands left."""
    gen = Generator(rng)
    conn = resp.Connection(port)
    try:
        for start in range(0, count, 50):
            conn.pipeline([gen.command() for _ in range(min(50, count - start))])
            if (start + 50) % segment == 0:
                conn.call(b"DISCARD")  # the stream may have left a MULTI open
                keys = conn.call(b"KEYS", b"[a-z][0-9]")
                conn.pipeline([[b"RENAME", key, b"kept:%d:%s" % (start, key)] for key in keys])
    finally:
        conn.close()


def values_only(state):
    return {key: (kind, value, ttl) for key, (kind, _, value, ttl) in state.items()}


def reload_both(workdir, *args):
    """Starts each server on its own copy of `workdir`; returns their captures (with encodings)."""
    states = {}
    for name, start in STARTERS.items():
        copy = tempfile.mkdtemp(prefix=f"reload-{name}-")
        shutil.copytree(workdir, copy, dirs_exist_ok=True)
        extra = ("--save", "") if name == "nova" else ()
        server = start(*args, *extra, workdir=copy)
        try:
            states[name] = capture(server.port, dbs=(0,))
        finally:
            server.cleanup()
    return states


@pytest.mark.parametrize("writer", ["nova", "redis"])
def test_random_streams_through_the_aof_load_identically(writer):
    # A failure names its seed; COMMAND_STREAM_SEED=<seed> replays it.
    seed = int(os.environ.get("COMMAND_STREAM_SEED") or random.randrange(1 << 32))
    rng = random.Random(seed)
    workdir = tempfile.mkdtemp()
    extra = ("--save", "") if writer == "nova" else ()
    server = STARTERS[writer]("--appendonly", "yes", "--appendfsync", "always", *extra, workdir=workdir)
    try:
        client = redis.Redis(port=server.port)
        run_stream(server.port, rng, 6000)
        client.bgrewriteaof()  # the rest goes to an incremental file on top of an RDB base
        assert wait_for(lambda: client.info("persistence")["aof_rewrite_in_progress"] == 0
                        and client.info("persistence")["aof_rewrite_scheduled"] == 0)
        run_stream(server.port, rng, 6000)
        live = capture(server.port, dbs=(0,))
        assert len({kind for kind, *_ in live.values()} & {b"hash", b"list", b"set", b"zset"}) >= 3, live
        client.close()
        server.kill()
        check = subprocess.run(["redis-check-aof", os.path.join(workdir, "appendonlydir", "appendonly.aof.manifest")],
                               capture_output=True, timeout=60)
        assert check.returncode == 0, check.stdout
        states = reload_both(workdir, "--appendonly", "yes")
        assert values_only(as_replayed(states["nova"])) == values_only(as_replayed(live)), f"seed={seed}"
        assert states["nova"] == states["redis"], f"seed={seed}"
    finally:
        server.cleanup()


@pytest.mark.parametrize("writer", ["nova", "redis"])
def test_random_streams_through_a_snapshot_load_identically(writer):
    seed = random.randrange(1 << 32)
    workdir = tempfile.mkdtemp()
    server = STARTERS[writer](workdir=workdir)
    try:
        run_stream(server.port, random.Random(seed), 8000)
        live = capture(server.port, dbs=(0,))
        assert len({kind for kind, *_ in live.values()} & {b"hash", b"list", b"set", b"zset"}) >= 3, live
        assert redis.Redis(port=server.port).save()
        server.stop()
        check = subprocess.run(["redis-check-rdb", os.path.join(workdir, "dump.rdb")], capture_output=True, timeout=60)
        assert check.returncode == 0, check.stdout
        states = reload_both(workdir)
        assert values_only(states["nova"]) == values_only(live), f"seed={seed}"
        assert states["nova"] == states["redis"], f"seed={seed}"
    finally:
        server.cleanup()


def test_every_type_and_encoding_round_trips_through_both_servers():
    """The fixed data set (large and compact encodings of every type, TTLs, three databases)."""
    from support.datasets import random_dataset
    workdir = tempfile.mkdtemp()
    server = servers.start_nova("--save", "", workdir=workdir)
    try:
        expected = random_dataset(redis.Redis(port=server.port), count=400)
        encodings = {state[1] for state in expected.values()}
        assert {b"int", b"embstr", b"raw", b"listpack", b"hashtable", b"quicklist", b"intset", b"skiplist"} <= encodings
        redis.Redis(port=server.port).save()
    finally:
        server.stop()
    reference = servers.start_redis(workdir=workdir)
    try:
        check_dataset(reference.port, expected)
    finally:
        reference.cleanup()
