"""Large values are written by reference (writev from the value's own storage), not copied into the reply
buffer. These tests look for what that could break: order within pipelines and transactions, partial
writes to a slow reader, a value changed while an earlier reply still refers to it, replies dropped by
CLIENT REPLY, connections closed with such replies unsent."""
import os
import random
import socket
import time

import redis


def read_exactly(sock, count, chunk=1 << 20, pause=0.0):
    data = bytearray()
    sock.settimeout(10)
    while len(data) < count:
        part = sock.recv(min(chunk, count - len(data)))
        assert part, f"connection closed after {len(data)} of {count} bytes"
        data += part
        if pause:
            time.sleep(pause)
    return bytes(data)


def bulk(value):
    return b"$%d\r\n%s\r\n" % (len(value), value)


def command(*words):
    return b"*%d\r\n" % len(words) + b"".join(bulk(w if isinstance(w, bytes) else w.encode()) for w in words)


def test_pipelined_gets_of_every_size_come_back_in_order(r):
    values = {f"k{i}": os.urandom(random.choice([0, 10, 4095, 4096, 4097, 16384, 100_000, 1_000_000]))
              for i in range(120)}
    for key, value in values.items():
        r.set(key, value)
    keys = list(values) * 4
    random.shuffle(keys)
    pipe = r.pipeline(transaction=False)
    for key in keys:
        pipe.get(key)
        pipe.strlen(key)
    replies = pipe.execute()
    for index, key in enumerate(keys):
        assert replies[2 * index] == values[key]
        assert replies[2 * index + 1] == len(values[key])
    # In a transaction, and through GETEX/GETDEL and a script (which copy).
    pipe = r.pipeline(transaction=True)
    for key in keys[:40]:
        pipe.get(key)
    assert pipe.execute() == [values[k] for k in keys[:40]]
    assert r.getex(keys[0], ex=100) == values[keys[0]]
    assert r.eval("return redis.call('GET', KEYS[1])", 1, keys[1]) == values[keys[1]]
    assert r.getdel(keys[2]) == values[keys[2]]


def test_a_slow_reader_gets_every_byte(port, r):
    value = os.urandom(300_000)
    r.set("big", value)
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(command("GET", "big") * 30 + command("PING"))
        want = bulk(value) * 30 + b"+PONG\r\n"
        # 9 MB read in pieces with pauses: the socket fills, and the server's writev stops part-way
        # through values again and again.
        assert read_exactly(sock, len(want), chunk=65536, pause=0.001) == want


def test_a_value_changed_after_its_reply_was_produced_is_sent_as_it_was(port, r):
    old = b"x" * 200_000
    r.set("v", old)
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(command("GET", "v") * 60)
        time.sleep(0.3)  # replies are produced up to the output limit; the rest wait for the reader
        r.append("v", b"YYYY")
        r.setrange("v", 0, b"ZZZZ")
        new = b"ZZZZ" + old[4:] + b"YYYY"
        data = read_exactly(sock, 1)
        deadline = time.time() + 10
        while (data.count(b"\r\n$") < 59 or not data.endswith(b"\r\n")) and time.time() < deadline:
            data += sock.recv(1 << 20)
        before = after = 0
        while data.startswith(bulk(old)):
            data = data[len(bulk(old)):]
            before += 1
        while data.startswith(bulk(new)):
            data = data[len(bulk(new)):]
            after += 1
        assert data == b"" and before + after == 60 and before > 0, (before, after, len(data))
    assert r.get("v") == new
    r.set("v", b"short")
    r.delete("v")


def test_client_reply_off_and_skip_drop_large_replies_whole(port, r):
    values = [os.urandom(50_000) for _ in range(3)]
    for index, value in enumerate(values):
        r.set(f"s{index}", value)
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(command("CLIENT", "REPLY", "SKIP") + command("GET", "s0") + command("GET", "s1")
                     + command("CLIENT", "REPLY", "OFF") + command("GET", "s2") + command("GET", "s0")
                     + command("CLIENT", "REPLY", "ON") + command("GET", "s2"))
        want = bulk(values[1]) + b"+OK\r\n" + bulk(values[2])
        assert read_exactly(sock, len(want)) == want


def test_connections_closed_with_large_replies_unsent_leave_the_server_well(port, r):
    r.set("huge", b"h" * 2_000_000)
    before = r.info("memory")["used_memory"]
    for _ in range(30):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(command("GET", "huge") * 20)
        time.sleep(0.01)
        sock.close()
    time.sleep(0.5)
    clients = r.info("clients")["connected_clients"]
    assert clients <= 2
    assert r.strlen("huge") == 2_000_000
    # The value is still whole and changes normally once nothing refers to it.
    r.append("huge", b"!")
    assert r.getrange("huge", -2, -1) == b"h!"
    assert r.info("memory")["used_memory"] < before + 10_000_000


def test_a_reader_that_never_reads_is_cut_off_by_the_output_limit(port, r):
    r.config_set("client-output-buffer-limit", "normal 1mb 1mb 0")
    try:
        r.set("big", b"b" * 100_000)
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(command("CLIENT", "SETNAME", "idle") + command("GET", "big") * 200)
            time.sleep(0.5)
            names = [c["name"] for c in r.client_list()]
            # Either cut off (the limit counts referenced values) or held by back-pressure with its input
            # unread: never 20 MB of replies buffered for it.
            if "idle" in names:
                info = next(c for c in r.client_list() if c["name"] == "idle")
                assert int(info["omem"]) <= 2_000_000, info
    finally:
        r.config_set("client-output-buffer-limit", "normal 0 0 0")
