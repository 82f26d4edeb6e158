"""The wire protocol from raw sockets: malformed frames get Redis's exact replies (compared with a real
redis-server), pipelines and inline commands work, and no input crashes the server or grows it unbounded."""
import os
import random
import socket
import time

import pytest

from support import resp

MALFORMED = [
    b"*abc\r\n",
    b"*1\r\n$-1\r\n",
    b"*1\r\n$abc\r\n",
    b"*1\r\nx3\r\nfoo\r\n",
    b"*2\r\n$3\r\nGET\r\n:1\r\n",
    b"*1\r\n$99999999999\r\n",
    b"*1\r\n$536870913\r\n",
    b"SET a \"b\r\n",
    b"SET a \"b\"c\r\n",
    b"ECHO 'it''s'\r\n",
    b"PING\r\n*1\r\n$x\r\n",
    b"*1\r\n$4\r\nPING\r\n*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\nb\r\n*1\r\n$-7\r\nGET a\r\n",
    b"*9999999999999999999999\r\n",
    b"*" + b"1" * 70000,
    b"*1\r\n$" + b"1" * 70000,
    b"GET " + b"x" * 70000,
]

WELL_FORMED = [
    b"PING\r\n",
    b"\r\n\r\n  \r\nPING\r\n",
    b"SET a b\r\nGET a\nGET   a  \r\n",
    b"SET q \"x\\x41\\ny\"\r\nGET q\r\n",
    b"*0\r\n*-1\r\n*1\r\n$4\r\nPING\r\n",
    b"$5\r\n",
    b"*1\r\n$4\r\nPING\r\n\xff\xfe\r\n",
    b"ECHO\r\nECHO a b\r\nNOSUCH arg\r\n",
    b"PING\r\nQUIT\r\nPING\r\n",
]


def exchange(port, data, wait=1.0):
    """Sends `data`, returns (everything received, whether the server closed the connection)."""
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(data)
    s.settimeout(wait)
    received = b""
    closed = False
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                closed = True
                break
            received += chunk
    except socket.timeout:
        pass
    except ConnectionResetError:
        closed = True
    s.close()
    return received, closed


@pytest.mark.parametrize("data", MALFORMED + WELL_FORMED, ids=lambda d: repr(d[:40]))
def test_same_reply_as_redis(nova_server, redis_server, data):
    for port in (nova_server.port, redis_server.port):
        resp.Connection(port).call("FLUSHALL")
    wait = 0.4
    got = exchange(nova_server.port, data, wait)
    want = exchange(redis_server.port, data, wait)
    assert got == want


def test_multibulk_count_limit(nova_server):
    received, closed = exchange(nova_server.port, b"*1048577\r\n")
    assert received == b"-ERR Protocol error: invalid multibulk length\r\n"
    assert closed


def test_unauthenticated_limits_until_auth():
    from support import servers
    server = servers.start_nova(password="pw")
    try:
        received, closed = exchange(server.port, b"*20\r\n")
        assert received == b"-ERR Protocol error: unauthenticated multibulk length\r\n" and closed
        received, closed = exchange(server.port, b"*2\r\n$3\r\nGET\r\n$20000\r\n")
        assert received == b"-ERR Protocol error: unauthenticated bulk length\r\n" and closed
        big = b"x" * 20000
        data = resp.encode("AUTH", "pw") + resp.encode("SET", "k", big) + resp.encode("STRLEN", "k")
        received, closed = exchange(server.port, data)
        assert received == b"+OK\r\n+OK\r\n:20000\r\n" and not closed
    finally:
        server.cleanup()


def test_partial_huge_bulk_reserves_nothing(nova_server):
    rss_before = rss_of(nova_server)
    sockets = []
    for _ in range(20):
        s = socket.create_connection(("127.0.0.1", nova_server.port))
        s.sendall(b"*2\r\n$3\r\nSET\r\n$536870000\r\n" + b"x" * 1000)
        sockets.append(s)
    time.sleep(0.3)
    assert rss_of(nova_server) - rss_before < 50 * 1024 * 1024
    for s in sockets:
        s.close()
    assert resp.Connection(nova_server.port).call("PING") == "PONG"


def test_reader_that_never_reads_cannot_grow_server_memory(nova_server):
    conn = resp.Connection(nova_server.port)
    conn.call("SET", "big", "v" * 100_000)
    rss_before = rss_of(nova_server)
    s = socket.create_connection(("127.0.0.1", nova_server.port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    s.settimeout(0.2)
    request = resp.encode("GET", "big") * 100
    sent = 0
    deadline = time.time() + 5
    while time.time() < deadline and sent < 2_000_000_000:
        try:
            sent += s.send(request)
        except socket.timeout:
            break
    # Each request asks for 100 kB; without back-pressure the server would queue gigabytes.
    grown = rss_of(nova_server) - rss_before
    assert grown < 200 * 1024 * 1024, f"server grew {grown} bytes"
    s.close()
    assert conn.call("PING") == "PONG"


def test_random_bytes_never_crash_the_server(nova_server):
    rng = random.Random(int(os.environ.get("FUZZ_SEED", "1234")))
    alphabet = [b"*", b"$", b"\r\n", b"\r", b"\n", b"-1", b"0", b"3", b"99999999999", b"GET", b"SET", b"a",
                b"\x00", b"\xff", b"\"", b"'", b"\\x", b" ", b"PING", b"QUIT"]
    for _ in range(300):
        data = b"".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40)))
        if rng.random() < 0.3:
            data += bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
        exchange(nova_server.port, data, wait=0.05)
    assert resp.Connection(nova_server.port).call("PING") == "PONG"


def test_pipelined_replies_arrive_in_order(nova_server):
    conn = resp.Connection(nova_server.port)
    commands = [("SET", f"o{i}", str(i)) for i in range(5000)] + [("GET", f"o{i}") for i in range(5000)]
    replies = conn.pipeline(commands)
    assert replies[:5000] == ["OK"] * 5000
    assert replies[5000:] == [str(i).encode() for i in range(5000)]


def rss_of(server):
    with open(f"/proc/{server.process.pid}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
