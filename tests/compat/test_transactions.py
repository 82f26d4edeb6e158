"""MULTI / EXEC / DISCARD / WATCH through redis-py and raw RESP: queueing errors, runtime errors, WATCH
invalidation by other clients, expiry and flushes, atomicity, blocking commands inside transactions."""
import threading
import time

import pytest
import redis

from support import resp


def test_pipeline_transaction(r):
    with r.pipeline(transaction=True) as pipe:
        pipe.set("a", 1).incr("a").lpush("l", "x", "y").lrange("l", 0, -1)
        assert pipe.execute() == [True, 2, 2, [b"y", b"x"]]


def test_queueing_error_aborts_with_execabort(r, port):
    conn = resp.Connection(port)
    try:
        assert conn.pipeline([[b"MULTI"], [b"SET", b"a", b"1"], [b"SET", b"a"], [b"NOSUCH"], [b"EXEC"]]) == [
            "OK", "QUEUED", resp.Error("ERR wrong number of arguments for 'set' command"),
            resp.Error("ERR unknown command 'NOSUCH', with args beginning with: "),
            resp.Error("EXECABORT Transaction discarded because of previous errors."),
        ]
        assert conn.call(b"GET", b"a") is None
        assert conn.pipeline([[b"MULTI"], [b"SET", b"a", b"1"], [b"EXEC", b"extra"], [b"EXEC"]]) == [
            "OK", "QUEUED",
            resp.Error("EXECABORT Transaction discarded because of: wrong number of arguments for 'exec' command"),
            resp.Error("ERR EXEC without MULTI"),
        ]
        assert conn.pipeline([[b"MULTI"], [b"MULTI"], [b"WATCH", b"a"], [b"DISCARD"], [b"DISCARD"]]) == [
            "OK", resp.Error("ERR MULTI calls can not be nested"), resp.Error("ERR WATCH inside MULTI is not allowed"),
            "OK", resp.Error("ERR DISCARD without MULTI"),
        ]
    finally:
        conn.close()
    with pytest.raises(redis.ResponseError, match="wrong number of arguments"):
        with r.pipeline() as pipe:
            pipe.set("a", 1).execute_command("SET", "a")
            pipe.execute()


def test_runtime_errors_do_not_roll_back(r):
    r.set("s", "text")
    with r.pipeline() as pipe:
        pipe.set("a", 1).lpush("s", "x").set("b", 2)
        results = pipe.execute(raise_on_error=False)
    assert results[0] is True and results[2] is True
    assert isinstance(results[1], redis.ResponseError) and str(results[1]).startswith("WRONGTYPE")
    assert r.mget("a", "b") == [b"1", b"2"]


def test_watch_aborts_on_change_by_another_client(r, port):
    other = redis.Redis(port=port)
    with r.pipeline() as pipe:
        pipe.watch("k")
        other.set("k", "changed")
        pipe.multi()
        pipe.set("k", "mine")
        with pytest.raises(redis.WatchError):
            pipe.execute()
    assert r.get("k") == b"changed"
    # Reads and writes of other keys do not invalidate.
    with r.pipeline() as pipe:
        pipe.watch("k")
        other.get("k")
        other.set("unrelated", 1)
        pipe.multi()
        pipe.set("k", "mine")
        assert pipe.execute() == [True]


@pytest.mark.parametrize("change", [
    lambda c: c.flushdb(),
    lambda c: c.flushall(),
    lambda c: c.swapdb(0, 1),
    lambda c: c.expire("k", 0),
    lambda c: c.rename("k", "k2"),
    lambda c: c.append("k", "x"),
])
def test_watch_aborts_on_flush_swap_expire_rename(r, port, change):
    r.set("k", "v")
    conn = resp.Connection(port, strict_nulls=True)
    try:
        assert conn.call(b"WATCH", b"k") == "OK"
        change(redis.Redis(port=port))
        assert conn.pipeline([[b"MULTI"], [b"SET", b"k", b"mine"], [b"EXEC"]]) == ["OK", "QUEUED", resp.NULL_ARRAY]
    finally:
        conn.close()


def test_watch_aborts_when_the_key_expires(r, port):
    r.set("k", "v", px=100)
    conn = resp.Connection(port, strict_nulls=True)
    try:
        conn.call(b"WATCH", b"k")
        time.sleep(0.25)
        assert conn.pipeline([[b"MULTI"], [b"PING"], [b"EXEC"]]) == ["OK", "QUEUED", resp.NULL_ARRAY]
        # Flushing a watched key that does not exist is not a change.
        conn.call(b"WATCH", b"absent")
        r.flushdb()
        assert conn.pipeline([[b"MULTI"], [b"PING"], [b"EXEC"]]) == ["OK", "QUEUED", ["PONG"]]
    finally:
        conn.close()


def test_exec_is_atomic_against_other_clients(r, port):
    stop = threading.Event()
    seen = []

    def reader():
        c = redis.Redis(port=port)
        while not stop.is_set():
            seen.append(int(c.get("n") or 0))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for _ in range(100):
            with r.pipeline() as pipe:
                for _ in range(50):
                    pipe.incr("n")
                pipe.execute()
    finally:
        stop.set()
        thread.join()
    assert r.get("n") == b"5000"
    assert seen and all(value % 50 == 0 for value in seen)


def test_optimistic_locking_with_redis_py_transaction(r, port):
    def increment(pipe):
        value = int(pipe.get("counter") or 0)  # immediate mode: the key is watched
        pipe.multi()
        pipe.set("counter", value + 1)

    def worker():
        c = redis.Redis(port=port)
        for _ in range(50):
            c.transaction(increment, "counter")

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert r.get("counter") == b"150"


def test_blocking_commands_inside_multi_do_not_block(r, port):
    conn = resp.Connection(port, strict_nulls=True)
    try:
        replies = conn.pipeline([[b"MULTI"], [b"BLPOP", b"none", b"0"], [b"BRPOPLPUSH", b"none", b"x", b"0"],
                                 [b"BZPOPMIN", b"none", b"0"], [b"EXEC"]])
        assert replies[-1] == [resp.NULL_ARRAY, None, resp.NULL_ARRAY]
    finally:
        conn.close()


def test_a_blocked_client_wakes_after_exec(r, port):
    result = []

    def blocked():
        c = resp.Connection(port)
        result.append(c.call(b"BLPOP", b"jobs", b"5"))
        c.close()

    thread = threading.Thread(target=blocked)
    thread.start()
    deadline = time.time() + 5
    while r.info("clients")["blocked_clients"] != 1 and time.time() < deadline:
        time.sleep(0.01)
    with r.pipeline() as pipe:
        pipe.rpush("jobs", "a").rpush("jobs", "b").llen("jobs")
        assert pipe.execute() == [1, 2, 2], "the blocked client is served after EXEC, not inside it"
    thread.join(5)
    assert result == [[b"jobs", b"a"]]
    assert r.lrange("jobs", 0, -1) == [b"b"]


def test_client_list_shows_the_transaction(r, port):
    conn = resp.Connection(port)
    try:
        conn.pipeline([[b"MULTI"], [b"SET", b"a", b"1"], [b"SET", b"b", b"2"]])
        line = [l for l in r.execute_command("CLIENT", "LIST").decode().splitlines() if "flags=x" in l]
        assert len(line) == 1 and " multi=2 " in line[0]
    finally:
        conn.close()
