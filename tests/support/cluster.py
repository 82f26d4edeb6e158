"""A real Redis Cluster from Debian's redis-server on free loopback ports: each node with its own data
directory and cluster bus port, joined with `redis-cli --cluster create`, ready when every node says
cluster_state:ok and every replica finished its first sync."""
import subprocess
import time

import redis

from support import servers


class RedisCluster:
    def __init__(self, primaries=3, replicas=1, node_timeout=1000):
        self.primaries = primaries
        self.replicas = replicas
        self.nodes = []
        try:
            for _ in range(primaries * (1 + replicas)):
                self.nodes.append(servers.start_redis(
                    "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                    "--cluster-node-timeout", str(node_timeout), "--cluster-port", str(servers.free_port())))
            subprocess.run(["redis-cli", "--cluster", "create", *self.addresses, "--cluster-replicas", str(replicas),
                            "--cluster-yes"], check=True, capture_output=True, timeout=60)
            self.wait_healthy(primaries * replicas)
        except Exception:
            self.stop()
            raise

    @property
    def addresses(self):
        return [f"127.0.0.1:{node.port}" for node in self.nodes]

    @property
    def url(self):
        """The seeds of every node in one URL: redis://h:p1,h:p2,…"""
        return "redis://" + ",".join(self.addresses)

    def live(self):
        return [node for node in self.nodes if node.alive()]

    def client(self, node):
        return redis.Redis(port=node.port, decode_responses=True, socket_timeout=5)

    def wait_healthy(self, replicas, timeout=30):
        """Every live node: cluster_state ok, all primaries serving slots, `replicas` live replicas, and
        every replica's first sync done."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                if all(self._healthy(node, replicas) for node in self.live()):
                    return
            except redis.RedisError:
                pass
            time.sleep(0.1)
        raise RuntimeError("the cluster did not become healthy")

    def _healthy(self, node, replicas):
        client = self.client(node)
        try:
            if "cluster_state:ok" not in client.execute_command("CLUSTER", "INFO"):
                return False
            # CLUSTER NODES lines: id address flags primary ping pong epoch link slots…
            nodes = [line.split() for line in client.execute_command("CLUSTER", "NODES").splitlines() if line]
            # A node counts when its process runs (a killed one is not flagged `fail` at once).
            running = {f"127.0.0.1:{other.port}" for other in self.live()}
            live = [fields for fields in nodes if "fail" not in fields[2] and fields[1].split("@")[0] in running]
            serving = [fields for fields in live if "master" in fields[2] and len(fields) > 8]
            if len(serving) != self.primaries or len([fields for fields in live if "slave" in fields[2]]) < replicas:
                return False
            info = client.info("replication")
            if info["role"] != "master":
                return True
            # A primary: its replicas finished their first sync (a replica can take over at once).
            count = info.get("connected_slaves", 0)
            return count >= replicas // self.primaries and all(info[f"slave{i}"]["state"] == "online" for i in range(count))
        finally:
            client.close()

    def primary_of(self, key):
        """The node (ServerProcess) serving `key`'s slot, as the cluster sees it now."""
        node = self.live()[0]
        client = self.client(node)
        try:
            slot = client.execute_command("CLUSTER", "KEYSLOT", key)
            for start, end, primary, *_ in client.execute_command("CLUSTER", "SLOTS"):
                if start <= slot <= end:
                    return next(n for n in self.nodes if n.port == primary[1])
        finally:
            client.close()
        raise RuntimeError(f"no node serves {key}")

    def stop(self):
        for node in self.nodes:
            node.cleanup()
