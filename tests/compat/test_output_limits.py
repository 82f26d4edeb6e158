"""client-output-buffer-limit: a subscriber that stops reading is disconnected (hard limit at once, soft
limit after its seconds), and the server's memory stays bounded while 100 MB is published to it."""
import socket
import time

import redis

from support import resp, servers


def peak_rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def silent_subscriber(port, channel):
    """A subscriber with a tiny receive buffer that never reads after subscribing."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.sendall(resp.encode(b"SUBSCRIBE", channel))
    time.sleep(0.1)
    return sock


def wait_for(predicate, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_slow_subscriber_is_disconnected_and_memory_stays_bounded():
    server = servers.start_nova("--save", "")
    try:
        client = redis.Redis(port=server.port)
        baseline = peak_rss_bytes(server.process.pid)
        sock = silent_subscriber(server.port, b"firehose")
        assert client.pubsub_numsub("firehose") == [(b"firehose", 1)]
        message = b"m" * 100_000
        for _ in range(20):  # 20 x 50 x 100 kB = 100 MB
            pipe = client.pipeline(transaction=False)
            for _ in range(50):
                pipe.publish("firehose", message)
            pipe.execute()
        assert wait_for(lambda: client.pubsub_numsub("firehose") == [(b"firehose", 0)]), "the subscriber is still connected"
        assert "overcoming of output buffer limits" in server.log()
        growth = peak_rss_bytes(server.process.pid) - baseline
        print(f"peak RSS growth {growth / 1e6:.1f} MB")
        assert growth < 96 * 1024 * 1024, f"peak RSS grew by {growth} bytes"
        assert client.ping()
        sock.close()
    finally:
        server.cleanup()


def test_soft_limit_disconnects_after_its_seconds(r, port):
    r.config_set("client-output-buffer-limit", "pubsub 0 1mb 1")
    sock = silent_subscriber(port, b"slow")
    try:
        message = b"s" * 50_000
        started = time.time()
        while time.time() - started < 15 and r.pubsub_numsub("slow") != [(b"slow", 0)]:
            for _ in range(10):
                r.publish("slow", message)
            time.sleep(0.1)
        elapsed = time.time() - started
        assert r.pubsub_numsub("slow") == [(b"slow", 0)]
        assert elapsed >= 1, "the soft limit allows its seconds first"
    finally:
        sock.close()
        r.config_set("client-output-buffer-limit", "pubsub 32mb 8mb 60")


def test_a_reading_subscriber_is_never_disconnected(r, port):
    pubsub = redis.Redis(port=port).pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe("steady")
    received = 0
    message = b"x" * 100_000
    for _ in range(400):  # 40 MB in total, more than the hard limit, read as it comes
        r.publish("steady", message)
        while pubsub.get_message(timeout=0) is not None:
            received += 1
    while received < 400:
        if pubsub.get_message(timeout=1) is not None:
            received += 1
    assert r.pubsub_numsub("steady") == [(b"steady", 1)]
    pubsub.close()
