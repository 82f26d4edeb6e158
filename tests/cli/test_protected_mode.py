"""Protected mode, seen from another host: a network namespace this test creates (ip netns + veth), whose
client connects to the server's address on the veth. Never any other address of the machine. The refusal
is compared byte for byte with redis-server's."""
import os
import shutil
import subprocess
import sys

import pytest

from support import servers

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("ip"),
                                reason="needs root and iproute2 to create a network namespace")

HOST = "10.253.7.1"
PEER = "10.253.7.2"

CLIENT = r"""
import socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
# A refused client is told at once, before it sends anything; a served one answers the PING.
s.settimeout(0.3)
data = b""
try:
    data = s.recv(65536)
except socket.timeout:
    pass
s.settimeout(5)
if not data:
    s.sendall(b"*1\r\n$4\r\nPING\r\n")
try:
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
        if data.endswith(b"\r\n") and not data.startswith(b"-DENIED"):
            break
except socket.timeout:
    pass
sys.stdout.buffer.write(data)
"""


def sh(*words):
    subprocess.run(words, check=True, capture_output=True, timeout=30)


@pytest.fixture(scope="module")
def namespace():
    name = f"novatest{os.getpid() % 100000}"
    host_if, peer_if = f"nvh{os.getpid() % 100000}", f"nvp{os.getpid() % 100000}"
    sh("ip", "netns", "add", name)
    try:
        sh("ip", "link", "add", host_if, "type", "veth", "peer", "name", peer_if)
        sh("ip", "link", "set", peer_if, "netns", name)
        sh("ip", "addr", "add", f"{HOST}/30", "dev", host_if)
        sh("ip", "link", "set", host_if, "up")
        sh("ip", "netns", "exec", name, "ip", "addr", "add", f"{PEER}/30", "dev", peer_if)
        sh("ip", "netns", "exec", name, "ip", "link", "set", peer_if, "up")
        sh("ip", "netns", "exec", name, "ip", "link", "set", "lo", "up")
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)
        subprocess.run(["ip", "link", "del", host_if], capture_output=True)


def ping_from(namespace, port):
    done = subprocess.run(["ip", "netns", "exec", namespace, sys.executable, "-c", CLIENT, HOST, str(port)],
                          capture_output=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout


def ping_local(port):
    done = subprocess.run([sys.executable, "-c", CLIENT, "127.0.0.1", str(port)], capture_output=True, timeout=30)
    return done.stdout


@pytest.mark.parametrize("extra, expected_prefix", [
    ((), b"-DENIED Redis is running in protected mode"),
    (("--requirepass", "s3cret"), b"-NOAUTH"),
    (("--protected-mode", "no"), b"+PONG"),
])
def test_remote_clients_match_redis(namespace, extra, expected_prefix):
    bind = ("--bind", f"127.0.0.1 {HOST}")
    nova = servers.start_nova(*bind, *extra)
    ref = servers.start_redis(*bind, *extra)
    try:
        ours, theirs = ping_from(namespace, nova.port), ping_from(namespace, ref.port)
        assert ours.startswith(expected_prefix), ours
        assert ours == theirs
        # Loopback clients are served whatever the mode.
        assert ping_local(nova.port) in (b"+PONG\r\n", b"-NOAUTH Authentication required.\r\n")
        assert nova.alive()
    finally:
        nova.cleanup()
        ref.cleanup()
