"""Hashes, lists, sets and sorted sets through redis-py: the client's own API, encodings as Redis reports
them, blocking commands (timeouts, wake-up order, CLIENT UNBLOCK) and a large sorted set."""
import threading
import time

import pytest
import redis

from support import resp


def test_redis_py_collection_api(r):
    assert r.hset("user:1", mapping={"name": "Ada", "visits": 1}) == 2
    assert r.hincrby("user:1", "visits", 41) == 42
    assert r.hincrbyfloat("user:1", "score", 2.5) == 2.5
    assert r.hgetall("user:1") == {b"name": b"Ada", b"visits": b"42", b"score": b"2.5"}
    assert r.hmget("user:1", "name", "nope") == [b"Ada", None]

    assert r.rpush("queue", "a", "b", "c") == 3
    assert r.lpop("queue", 2) == [b"a", b"b"]
    assert r.lmove("queue", "done", "LEFT", "RIGHT") == b"c"
    assert r.lrange("done", 0, -1) == [b"c"]
    assert r.lpos("done", "c") == 0

    assert r.sadd("tags", "x", "y", "z") == 3
    assert r.smismember("tags", ["x", "q"]) == [1, 0]
    assert r.sinter("tags", "missing") == set()
    assert r.sintercard(1, ["tags"], limit=2) == 2

    assert r.zadd("board", {"ann": 10, "bob": 2.5, "cy": float("inf")}) == 3
    assert r.zrange("board", 0, -1, withscores=True) == [(b"bob", 2.5), (b"ann", 10.0), (b"cy", float("inf"))]
    assert r.zrangebyscore("board", "(2.5", "+inf") == [b"ann", b"cy"]
    assert r.zrange("board", "+inf", "-inf", byscore=True, desc=True, offset=1, num=1) == [b"ann"]
    assert r.zincrby("board", 0.1, "bob") == pytest.approx(2.6)
    assert r.zpopmin("board") == [(b"bob", 2.6)]
    assert r.zmpop(1, ["board"], max=True) == [b"board", [[b"cy", b"inf"]]]


def test_scores_are_formatted_as_redis(r):
    conn = resp.Connection(r.connection_pool.connection_kwargs["port"])
    try:
        conn.call(b"ZADD", b"z", b"0.1", b"a", b"1e20", b"b", b"-inf", b"c", b"3.0", b"d", b"1.7976931348623157e308", b"e")
        assert conn.call(b"ZRANGE", b"z", b"0", b"-1", b"WITHSCORES") == [
            b"c", b"-inf", b"a", b"0.10000000000000001", b"d", b"3", b"b", b"1e+20", b"e", b"1.7976931348623157e+308"]
        assert conn.call(b"ZINCRBY", b"z", b"1", b"a") == b"1.1000000000000001"
        assert conn.call(b"ZADD", b"z", b"nan", b"x") == resp.Error("ERR value is not a valid float")
    finally:
        conn.close()


def test_wrongtype_errors(r):
    r.set("s", "v")
    for call in (lambda: r.hget("s", "f"), lambda: r.lpush("s", 1), lambda: r.sadd("s", 1),
                 lambda: r.zadd("s", {"a": 1}), lambda: r.blpop(["s"], timeout=0.1)):
        with pytest.raises(redis.ResponseError, match="^WRONGTYPE Operation against a key holding the wrong kind of value$"):
            call()


@pytest.mark.parametrize("limit,small,large,build", [
    (512, "listpack", "hashtable", lambda r, n: r.hset("k", mapping={f"f{i}": i for i in range(n)})),
    (128, "quicklist", "quicklist", lambda r, n: r.rpush("k", *range(n))),
    (128, "listpack", "skiplist", lambda r, n: r.zadd("k", {f"m{i}": i for i in range(n)})),
])
def test_encodings_switch_at_redis_thresholds(r, limit, small, large, build):
    """Redis 7.0's defaults: hash-max-listpack-entries 512, zset-max-listpack-entries 128."""
    build(r, limit)
    assert r.object("encoding", "k") == small.encode()
    r.delete("k")
    build(r, limit + 1)
    assert r.object("encoding", "k") == large.encode()


def test_set_and_value_size_encodings(r):
    r.sadd("ints", *range(512))
    assert r.object("encoding", "ints") == b"intset"
    r.sadd("ints", 512)
    assert r.object("encoding", "ints") == b"hashtable"
    r.sadd("mixed", 1, 2)
    assert r.object("encoding", "mixed") == b"intset"
    r.sadd("mixed", "a")
    assert r.object("encoding", "mixed") == b"hashtable"
    r.hset("h", "f", "v" * 64)
    assert r.object("encoding", "h") == b"listpack"
    r.hset("h", "g", "v" * 65)
    assert r.object("encoding", "h") == b"hashtable"
    r.zadd("z", {"m" * 65: 1})
    assert r.object("encoding", "z") == b"skiplist"
    r.config_set("hash-max-listpack-entries", 2)
    try:
        r.hset("small", mapping={"a": 1, "b": 2, "c": 3})
        assert r.object("encoding", "small") == b"hashtable"
    finally:
        r.config_set("hash-max-listpack-entries", 512)


def blocked_later(port, *command, delay=0.0, result=None):
    """Runs a blocking command on its own connection in a thread; the reply lands in `result`."""
    def run():
        conn = resp.Connection(port, strict_nulls=True)
        try:
            time.sleep(delay)
            result.append(conn.call(*command))
        finally:
            conn.close()
    thread = threading.Thread(target=run)
    thread.start()
    return thread


def wait_blocked(r, count):
    deadline = time.time() + 5
    while time.time() < deadline:
        if r.info("clients")["blocked_clients"] == count:
            return
        time.sleep(0.01)
    raise AssertionError(f"expected {count} blocked clients, have {r.info('clients')['blocked_clients']}")


def test_blpop_times_out_after_fractional_seconds(r):
    started = time.time()
    assert r.blpop(["nothing"], timeout=0.3) is None
    assert 0.25 <= time.time() - started < 2
    with pytest.raises(redis.ResponseError, match="timeout is negative"):
        r.blpop(["nothing"], timeout=-1)
    with pytest.raises(redis.ResponseError, match="timeout is not a float or out of range"):
        r.execute_command("BLPOP", "nothing", "abc")


def test_blocked_clients_are_served_in_blocking_order(r, port):
    results = [[], [], []]
    threads = []
    for n in range(3):
        threads.append(blocked_later(port, b"BLPOP", b"jobs", b"5", result=results[n]))
        wait_blocked(r, n + 1)
    assert r.rpush("jobs", "first", "second") == 2
    wait_blocked(r, 1)
    assert r.llen("jobs") == 0
    r.rpush("jobs", "third")
    for thread in threads:
        thread.join(5)
    assert results == [[[b"jobs", b"first"]], [[b"jobs", b"second"]], [[b"jobs", b"third"]]]


def test_blocking_pops_wake_on_push_from_another_client(r, port):
    results = {name: [] for name in ("blmove", "bzpopmin", "blmpop", "brpoplpush")}
    threads = [
        blocked_later(port, b"BLMOVE", b"src", b"dst", b"LEFT", b"RIGHT", b"5", result=results["blmove"]),
        blocked_later(port, b"BZPOPMIN", b"zs", b"5", result=results["bzpopmin"]),
        blocked_later(port, b"BLMPOP", b"5", b"2", b"a", b"b", b"RIGHT", b"COUNT", b"2", result=results["blmpop"]),
        blocked_later(port, b"BRPOPLPUSH", b"dst", b"final", b"5", result=results["brpoplpush"]),
    ]
    wait_blocked(r, 4)
    r.rpush("src", "moved")       # BLMOVE moves it to dst, which wakes BRPOPLPUSH in turn
    r.zadd("zs", {"low": 1, "high": 2})
    r.rpush("b", 1, 2, 3)
    for thread in threads:
        thread.join(5)
    assert results["blmove"] == [b"moved"]
    assert results["brpoplpush"] == [b"moved"]
    assert results["bzpopmin"] == [[b"zs", b"low", b"1"]]
    assert results["blmpop"] == [[b"b", [b"3", b"2"]]]
    assert r.lrange("final", 0, -1) == [b"moved"] and r.exists("src", "dst") == 0


def test_a_blocked_client_waits_through_type_changes_and_deletion(r, port):
    result = []
    thread = blocked_later(port, b"BLPOP", b"k", b"5", result=result)
    wait_blocked(r, 1)
    r.set("k", "a string")        # Redis keeps the client waiting: the key is not a list
    r.delete("k")
    time.sleep(0.2)
    assert result == [] and r.info("clients")["blocked_clients"] == 1
    assert b"flags=b" in r.execute_command("CLIENT", "LIST")
    r.lpush("k", "finally")
    thread.join(5)
    assert result == [[b"k", b"finally"]]


def test_client_unblock(r, port):
    results = [[], []]
    threads = [blocked_later(port, b"BLPOP", b"never", b"0", result=results[0])]
    wait_blocked(r, 1)
    threads.append(blocked_later(port, b"BZPOPMAX", b"never", b"0", result=results[1]))
    wait_blocked(r, 2)
    ids = [int(line.split()[0][3:]) for line in r.execute_command("CLIENT", "LIST").decode().splitlines()
           if "flags=b" in line]
    assert r.execute_command("CLIENT", "UNBLOCK", ids[0]) == 1
    assert r.execute_command("CLIENT", "UNBLOCK", ids[1], "ERROR") == 1
    assert r.execute_command("CLIENT", "UNBLOCK", ids[1]) == 0
    for thread in threads:
        thread.join(5)
    assert results[0] == [resp.NULL_ARRAY]
    assert results[1] == [resp.Error("UNBLOCKED client unblocked via CLIENT UNBLOCK")]
    with pytest.raises(redis.ResponseError, match="reason should be TIMEOUT or ERROR"):
        r.execute_command("CLIENT", "UNBLOCK", 1, "LATER")


def test_a_disconnected_blocked_client_is_forgotten(r, port):
    conn = resp.Connection(port)
    conn.send_raw(resp.encode(b"BLPOP", b"gone", b"0"))
    wait_blocked(r, 1)
    conn.close()
    deadline = time.time() + 5
    while r.info("clients")["blocked_clients"] and time.time() < deadline:
        time.sleep(0.01)
    assert r.info("clients")["blocked_clients"] == 0
    r.rpush("gone", "kept")
    assert r.lrange("gone", 0, -1) == [b"kept"]


def test_a_million_member_sorted_set(r, port):
    conn = resp.Connection(port)
    try:
        batch = []
        for chunk in range(1000):
            args = [b"ZADD", b"big"]
            for i in range(chunk * 1000, chunk * 1000 + 1000):
                args += [str((i * 7919) % 1_000_003).encode(), b"m%d" % i]
            batch.append(args)
            if len(batch) == 50:
                conn.pipeline(batch)
                batch = []
        assert conn.call(b"ZCARD", b"big") == 1_000_000
        assert conn.call(b"OBJECT", b"ENCODING", b"big") == b"skiplist"
        # m0 has score 0: the lowest; score of m1 is 7919, and exactly the members with smaller scores rank below.
        assert conn.call(b"ZRANK", b"big", b"m0") == 0
        below = conn.call(b"ZCOUNT", b"big", b"-inf", b"(7919")
        assert conn.call(b"ZRANK", b"big", b"m1") == below
        assert conn.call(b"ZRANGE", b"big", b"0", b"1") == [b"m0", conn.call(b"ZRANGE", b"big", b"1", b"1")[0]]
        assert conn.call(b"ZREMRANGEBYRANK", b"big", b"0", b"499999") == 500_000
        assert conn.call(b"ZCARD", b"big") == 500_000
    finally:
        conn.close()
