"""CacheManager coherence between two processes on a real Redis Cluster: each process is a
`nova-cache-bench peer` (a CacheManager driven line by line), so only the library's public API and the
cluster connect them. A write in one process drops the other's memory copy through CLIENT TRACKING on the
primary that owns the key, whichever primary that is; tags and redis-py's writes too."""
import os
import subprocess
import time

import pytest
from redis.cluster import RedisCluster as PyRedisCluster

from support import servers
from support.cluster import RedisCluster

BENCH = os.path.join(os.path.dirname(servers.nova_binary()), "nova-cache-bench")


class Peer:
    def __init__(self, url):
        self.process = subprocess.Popen([BENCH, "peer", "--url", url, "--namespace", "crm"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1)

    def ask(self, line):
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        return self.process.stdout.readline().strip()

    def eventually(self, line, expected, timeout=5):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.ask(line) == expected:
                return True
            time.sleep(0.02)
        return False

    def close(self):
        self.process.stdin.close()
        self.process.wait(timeout=10)


@pytest.fixture(scope="module")
def cluster():
    cluster = RedisCluster()
    yield cluster
    cluster.stop()


def test_two_processes_stay_coherent_on_every_primary(cluster):
    if not os.path.exists(BENCH):
        pytest.skip("nova-cache-bench not built (swift build -c release)")
    a, b = Peer(cluster.url), Peer(cluster.url)
    reference = PyRedisCluster(host="127.0.0.1", port=cluster.nodes[0].port, decode_responses=True)
    try:
        assert a.ask("ready") == "available" and b.ask("ready") == "available"
        keys = [f"customer:{index}" for index in range(30)]
        # The keys cover every primary.
        assert len({cluster.primary_of(f"crm:{key}").port for key in keys}) == 3
        for key in keys:
            assert a.ask(f"set {key} v1-{key} eu") == "OK"
        for key in keys:
            assert b.ask(f"get {key}") == f"v1-{key}"
            assert b.ask(f"cached {key}") == "yes"
        # A's writes drop B's copies, on whichever primary each key lives.
        for key in keys:
            assert a.ask(f"set {key} v2-{key}") == "OK"
        for key in keys:
            assert b.eventually(f"cached {key}", "no"), key
            assert b.ask(f"get {key}") == f"v2-{key}"
        # Another language's write, straight to the cluster.
        reference.set("crm:customer:3", '"from python"')
        assert b.eventually("cached customer:3", "no")
        assert b.ask("get customer:3") == "from python"
        # A tag invalidated in one process empties the other's memory and the cluster.
        for index in range(10):
            assert a.ask(f"set order:{index} o{index} batch") == "OK"
            assert b.ask(f"get order:{index}") == f"o{index}"
        assert a.ask("invalidate batch") == "OK"
        for index in range(10):
            assert b.eventually(f"cached order:{index}", "no")
            assert reference.exists(f"crm:order:{index}") == 0
        assert a.ask("status") == "available" and b.ask("status") == "available"
    finally:
        a.close()
        b.close()
        reference.close()
