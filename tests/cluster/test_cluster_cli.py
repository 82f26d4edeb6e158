"""`nova-cache` on a real Redis Cluster (3 primaries, 3 replicas of Debian's redis-server): the cluster's
state and a table of its nodes, summed statistics, key commands and flush across the nodes, and what an
operator sees while a primary fails over."""
import json
import os
import subprocess

import pytest
import redis
from redis.cluster import RedisCluster as PyRedisCluster

from support import servers
from support.cluster import RedisCluster

CLI = os.environ.get("NOVA_CLI_BIN") or os.path.join(os.path.dirname(servers.nova_binary()), "nova-cache")


def cli(*args, timeout=60):
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def cluster():
    cluster = RedisCluster()
    yield cluster
    cluster.stop()


def test_status_shows_the_cluster_and_every_node(cluster):
    result = cli("status", "--url", cluster.url)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("cluster 127.0.0.1:") and lines[0].endswith(": OK")
    assert "state ok, 16384/16384 slots served, 3 primaries, 3 replicas" in lines[1]
    rows = [line.split() for line in lines[3:]]
    assert sorted(row[0] for row in rows) == sorted(cluster.addresses)
    assert sorted(row[1] for row in rows) == ["primary"] * 3 + ["replica"] * 3
    assert sum(int(row[2]) for row in rows if row[1] == "primary") == 16384
    # One node's URL stands for its cluster.
    one = cli("status", "--url", f"redis://{cluster.addresses[4]}", "--json")
    report = json.loads(one.stdout)
    assert one.returncode == 0 and report["cluster"] is True and report["state"] == "ok"
    assert len(report["nodes"]) == 6 and report["slots_served"] == 16384


def test_keys_stats_and_flush_across_the_nodes(cluster):
    reference = PyRedisCluster(host="127.0.0.1", port=cluster.nodes[0].port, decode_responses=True)
    try:
        for index in range(40):
            assert cli("set", "--url", cluster.url, f"user:{index}", f"v{index}").returncode == 0
        assert reference.get("user:7") == "v7"
        assert cli("get", "--url", cluster.url, "user:13").stdout.strip() == "v13"
        listed = cli("keys", "--url", cluster.url, "user:*").stdout.split()
        assert sorted(listed) == sorted(f"user:{index}" for index in range(40))
        # The keys really are spread over the primaries.
        assert len({cluster.primary_of(f"user:{index}").port for index in range(40)}) == 3
        stats = json.loads(cli("stats", "--url", cluster.url, "--json").stdout)
        assert stats["keys"] == 40 and stats["db"] == 0
        assert cli("del", "--url", cluster.url, "user:1", "user:2", "user:3", "nope").stdout.strip() == "3"
        refused = cli("flush", "--url", cluster.url)
        assert refused.returncode == 2 and "--yes" in refused.stderr
        flushed = cli("flush", "--url", cluster.url, "--yes")
        assert flushed.returncode == 0 and "flushed the whole cluster: 37 keys removed" in flushed.stdout
        assert reference.dbsize() == 0
        # Commands that work on one node say so.
        backup = cli("backup", "--url", cluster.url, "--to", "/tmp/never-written")
        assert backup.returncode == 2 and "one node's URL" in backup.stderr
    finally:
        reference.close()


def test_status_during_and_after_a_failover(cluster):
    victim = cluster.primary_of("anything")
    victim.kill()
    during = cli("status", "--url", cluster.url, "--json")
    report = json.loads(during.stdout)
    assert during.returncode == 2 and report["healthy"] is False
    assert any(f"127.0.0.1:{victim.port}" in problem for problem in report["problems"])
    cluster.wait_healthy(replicas=2)
    after = cli("status", "--url", cluster.url)
    assert after.returncode == 2, after.stdout
    assert f"127.0.0.1:{victim.port}: failed" in after.stdout.splitlines()[0]
    assert "3 primaries, 2 replicas" in after.stdout
