"""DUMP and RESTORE against redis-server 7.0: payloads of every type and encoding move both ways (same
contents, same OBJECT ENCODING), RESTORE's options and errors answer as there, and corrupt payloads
with a valid checksum are refused or loaded whole, never crash the server. Replay with DIFF_SEED=<seed>."""
import os
import random
import struct
import time

import redis

from support import resp, servers


def crc64(data):
    """Redis's crc64 (Jones polynomial, reflected, no final XOR)."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x95AC9329AC4BC9B5 if crc & 1 else 0)
    return crc


def with_footer(body, version=10):
    data = body + struct.pack("<H", version)
    return data + struct.pack("<Q", crc64(data))


def test_crc64_vector():
    assert crc64(b"123456789") == 0xE9C6D914C4B8D9CA


def fill(client):
    client.set("str", "hello")
    client.set("int", 12345)
    client.set("neg", -5)
    client.set("long", "x" * 1000)
    client.set("random", bytes(random.Random(1).getrandbits(8) for _ in range(300)))
    client.rpush("list", *range(5))
    client.rpush("biglist", *[str(n) * 30 for n in range(300)])
    client.sadd("intset", 1, 2, 3)
    client.sadd("smallset", "a", "b")
    client.sadd("bigset", *range(1000))
    client.hset("hash", mapping={"a": 1, "b": "x"})
    client.hset("bighash", mapping={str(n): "v" * 100 for n in range(200)})
    client.zadd("zset", {"a": 1, "b": 2.5, "c": float("inf")})
    client.zadd("bigzset", {str(n): n / 3 for n in range(300)})
    client.pfadd("hll", *range(100))
    client.pfadd("densehll", *range(5000))
    for n in range(250):
        client.xadd("stream", {"n": n, "kind": "click" if n % 3 else "view", "big": "b" * (n % 70)}, id=f"{n + 1}-{n % 3}")
    client.xdel("stream", "5-2", "100-0")
    client.xgroup_create("stream", "workers", id="0")
    client.xreadgroup("workers", "alice", {"stream": ">"}, count=20)
    client.xreadgroup("workers", "bob", {"stream": ">"}, count=5)
    client.xgroup_create("stream", "idle", id="$", entries_read=250)
    client.xadd("smallstream", {"a": 1}, id="1-1")


def contents(client, key):
    kind = client.type(key).decode()
    read = {
        "string": lambda: client.get(key),
        "list": lambda: client.lrange(key, 0, -1),
        "set": lambda: sorted(client.smembers(key)),
        "hash": lambda: sorted(client.hgetall(key).items()),
        "zset": lambda: client.zrange(key, 0, -1, withscores=True),
        "stream": lambda: (client.xrange(key), client.xrevrange(key), client.xinfo_stream(key, full=True)["groups"],
                           client.execute_command("XINFO", "STREAM", key, "FULL", "COUNT", "0")),
    }[kind]
    return kind, read(), client.object("encoding", key)


def test_payloads_of_every_type_move_both_ways(pair):
    nova, ref = (redis.Redis(port=server.port) for server in pair)
    for client in (nova, ref):
        client.flushall()
        fill(client)
    keys = sorted(key.decode() for key in ref.keys())
    assert sorted(key.decode() for key in nova.keys()) == keys
    for source, target in ((ref, nova), (nova, ref)):
        for key in keys:
            assert target.restore(key + ":copy", 0, source.dump(key))
            assert contents(target, key + ":copy") == contents(source, key), (source, key)
    # A short string's payload is byte for byte Redis's (type, encoding, version 10, CRC64); longer ones
    # are LZF-compressed by both, with different but equally valid output.
    for key in ("str", "int", "neg"):
        assert nova.dump(key) == ref.dump(key)


def test_restore_options_and_errors_answer_as_redis(pair):
    nova, ref = (resp.Connection(server.port) for server in pair)
    setup = [[b"FLUSHALL"], [b"SET", b"s", b"hello"], [b"RPUSH", b"l", b"1"]]
    for conn in (nova, ref):
        conn.pipeline(setup)
    good = ref.call(b"DUMP", b"s")
    body = good[:-10]
    future = str(int(time.time() * 1000) + 100_000).encode()
    commands = [
        [b"RESTORE", b"s", b"0", good], [b"RESTORE", b"n", b"0", good, b"REPLACE", b"FOO"],
        [b"RESTORE", b"n", b"-1", good], [b"RESTORE", b"n", b"x", good], [b"RESTORE", b"n", b"0", good[:-1] + b"\x00"],
        [b"RESTORE", b"n", b"0", b"short"], [b"RESTORE", b"n", b"0", good, b"IDLETIME", b"-1"],
        [b"RESTORE", b"n", b"0", good, b"FREQ", b"256"], [b"RESTORE", b"n", b"0", good, b"FREQ", b"1", b"IDLETIME", b"1"],
        [b"RESTORE", b"n", b"0", good, b"IDLETIME", b"100"], [b"OBJECT", b"IDLETIME", b"n"],
        # Idle times around and past the 24-bit LRU clock's wrap (194 days) answer as Redis's arithmetic does.
        *[command for idle in (b"8640000", b"16777211", b"16777221", b"1000000000")
          for command in ([b"RESTORE", b"n", b"0", good, b"REPLACE", b"IDLETIME", idle], [b"OBJECT", b"IDLETIME", b"n"])],
        [b"RESTORE", b"n2", b"1", good, b"ABSTTL"], [b"EXISTS", b"n2"],
        [b"RESTORE", b"s", b"1", good, b"REPLACE", b"ABSTTL"], [b"EXISTS", b"s"],
        [b"RESTORE", b"t", future, good, b"ABSTTL"], [b"EXPIRETIME", b"t"],
        [b"DUMP", b"missing"], [b"RESTORE", b"l", b"0", good], [b"RESTORE", b"l", b"0", good, b"replace"], [b"TYPE", b"l"],
        # A newer RDB version than 7.0's is refused by the footer check.
        [b"RESTORE", b"v", b"0", with_footer(body, version=11)],
        # Valid footers around bad bodies: an unknown type, a truncated string, empty collections.
        [b"RESTORE", b"b1", b"0", with_footer(b"\x63abc")], [b"RESTORE", b"b2", b"0", with_footer(b"\x00\x05ab")],
        [b"RESTORE", b"b3", b"0", with_footer(b"\x02\x00")], [b"RESTORE", b"b4", b"0", with_footer(b"\x01\x00")],
        [b"RESTORE", b"b5", b"0", with_footer(b"\x04\x00")], [b"RESTORE", b"b6", b"0", with_footer(b"\x05\x00")],
        [b"RESTORE", b"ok", b"0", with_footer(b"\x00\x03abc")], [b"GET", b"ok"],
        [b"RESTORE", b"ok2", b"0", with_footer(b"\x00\xc0\x07")], [b"GET", b"ok2"], [b"OBJECT", b"ENCODING", b"ok2"],
    ]
    got, want = nova.pipeline(commands), ref.pipeline(commands)
    for command, a, b in zip(commands, got, want):
        assert a == b, f"{command!r:.120}: nova {a!r} redis {b!r}"


def test_corrupt_payloads_are_refused_or_loaded_whole(pair):
    seed = int(os.environ.get("DIFF_SEED", random.randrange(1 << 32)))
    rng = random.Random(seed)
    nova_server, ref_server = pair
    nova, ref = redis.Redis(port=nova_server.port), redis.Redis(port=ref_server.port)
    for client in (nova, ref):
        client.flushall()
    fill(ref)
    payloads = [ref.dump(key) for key in ref.keys()]
    for round_ in range(3000):
        body = bytearray(rng.choice(payloads)[:-10])
        for _ in range(rng.randint(1, 4)):
            action = rng.randrange(3)
            if action == 0 and body:
                body[rng.randrange(len(body))] = rng.randrange(256)
            elif action == 1 and len(body) > 1:
                del body[rng.randrange(1, len(body)):]
            else:
                body.insert(rng.randrange(len(body) + 1), rng.randrange(256))
        try:
            nova.restore("k", 0, with_footer(bytes(body)), replace=True)
        except redis.ResponseError as error:
            assert str(error) == "Bad data format", f"seed={seed} round {round_}: {error}"
            continue
        # Loaded: the value is whole, every element readable.
        kind = nova.type("k").decode()
        assert kind in ("string", "list", "set", "hash", "zset", "stream")
        contents(nova, "k")
        nova.dump("k")
    assert nova.ping()


def test_restore_with_a_relative_ttl_replays_from_the_aof_with_its_absolute_expiry():
    server = servers.start_nova("--appendonly", "yes", "--appendfsync", "always", "--save", "")
    try:
        client = redis.Redis(port=server.port)
        client.set("source", "value")
        payload = client.dump("source")
        client.restore("copy", 60_000, payload)
        expires = client.pexpiretime("copy")
        time.sleep(1.1)
        server.stop()
        server.start()
        client = redis.Redis(port=server.port)
        assert client.get("copy") == b"value"
        # The same absolute time, not a fresh minute from the replay.
        assert client.pexpiretime("copy") == expires
    finally:
        server.cleanup()
