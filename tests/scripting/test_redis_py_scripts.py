"""Issue 17: what redis-py 6.4.0 users run on Lua without knowing it — Lock (acquire, extend, reacquire,
release, timeouts, another owner's token), register_script (EVALSHA, then SCRIPT LOAD on NOSCRIPT),
scripts in pipelines and transactions — and the effects of scripts (keyspace events, WATCH, MONITOR)."""
import threading
import time

import pytest
import redis
from redis.exceptions import LockError, LockNotOwnedError, NoScriptError, ResponseError


def test_lock_acquire_extend_reacquire_release(r):
    lock = r.lock("resource", timeout=5)
    assert lock.acquire(blocking=False)
    assert r.get("resource") == lock.local.token
    assert not r.lock("resource", timeout=5).acquire(blocking=False)
    assert lock.extend(10)
    assert 10 < r.pttl("resource") / 1000 <= 15
    assert lock.extend(3, replace_ttl=True)
    assert r.pttl("resource") <= 3000
    assert lock.reacquire()
    assert 4000 < r.pttl("resource") <= 5000
    assert lock.owned() and lock.locked()
    lock.release()
    assert not r.exists("resource")
    with pytest.raises(LockError):
        lock.release()


def test_lock_owned_by_another_token_is_not_released_or_extended(r):
    lock = r.lock("resource", timeout=5)
    assert lock.acquire(blocking=False)
    r.set("resource", "someone-else")
    with pytest.raises(LockNotOwnedError):
        lock.extend(5)
    with pytest.raises(LockNotOwnedError):
        lock.reacquire()
    with pytest.raises(LockNotOwnedError):
        lock.release()
    assert r.get("resource") == b"someone-else"


def test_lock_timeout_and_blocking_acquire(r):
    first = r.lock("resource", timeout=0.3)
    assert first.acquire()
    second = r.lock("resource", timeout=5, blocking_timeout=3, sleep=0.05)
    started = time.monotonic()
    assert second.acquire()  # the first expires after 0.3 s
    assert time.monotonic() - started < 2
    with pytest.raises(LockNotOwnedError):
        first.release()
    second.release()


def test_lock_as_context_manager_across_threads(r, nova_server):
    counter = {"value": 0}

    def worker():
        client = redis.Redis(port=nova_server.port)
        for _ in range(20):
            with client.lock("counter-lock", timeout=5, blocking_timeout=10, sleep=0.001):
                current = counter["value"]
                time.sleep(0.0005)
                counter["value"] = current + 1

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert counter["value"] == 80
    assert not r.exists("counter-lock")


def test_register_script_loads_on_noscript(r):
    add = r.register_script("return redis.call('incrby', KEYS[1], ARGV[1])")
    r.script_flush()
    assert add(keys=["total"], args=[5]) == 5  # EVALSHA → NOSCRIPT → SCRIPT LOAD → EVALSHA
    assert r.script_exists(add.sha) == [True]
    assert add(keys=["total"], args=[2]) == 7
    with pytest.raises(NoScriptError):
        r.evalsha("0" * 40, 0)


def test_scripts_in_pipelines_and_transactions(r):
    double = r.register_script("return redis.call('incrby', KEYS[1], redis.call('get', KEYS[1]) or 1)")
    r.script_flush()
    with r.pipeline() as pipe:  # a pipeline loads its scripts first
        double(keys=["p"], client=pipe)
        double(keys=["p"], client=pipe)
        pipe.get("p")
        assert pipe.execute() == [1, 2, b"2"]
    with r.pipeline(transaction=True) as pipe:
        pipe.eval("return redis.call('set', KEYS[1], ARGV[1])", 1, "t", "v")
        pipe.eval("return redis.call('get', KEYS[1])", 1, "t")
        assert pipe.execute() == [b"OK", b"v"]


def test_script_errors_reach_the_client(r):
    with pytest.raises(ResponseError, match="user_script:1: Script attempted to access nonexistent global variable 'nope'"):
        r.eval("return nope", 0)
    r.set("text", "x")
    with pytest.raises(ResponseError, match="^value is not an integer or out of range script: "):
        r.eval("return redis.call('incr', KEYS[1])", 1, "text")
    with pytest.raises(ResponseError, match="^Error compiling script"):
        r.eval("return +", 0)


def test_script_writes_fire_keyspace_events_and_invalidate_watches(r, nova_server):
    r.config_set("notify-keyspace-events", "KEA")
    try:
        subscriber = redis.Redis(port=nova_server.port).pubsub()
        subscriber.psubscribe("__keyevent@0__:*")
        subscriber.get_message(timeout=1)
        watcher = redis.Redis(port=nova_server.port)
        with watcher.pipeline() as pipe:
            pipe.watch("watched")
            r.eval("redis.call('set', KEYS[1], 'by-script'); redis.call('del', KEYS[1])", 1, "watched")
            pipe.multi()
            pipe.set("watched", "mine")
            with pytest.raises(redis.WatchError):
                pipe.execute()
        events = []
        deadline = time.time() + 2
        while time.time() < deadline and len(events) < 2:
            message = subscriber.get_message(timeout=0.2)
            if message and message["type"] == "pmessage":
                events.append((message["channel"], message["data"]))
        assert events == [(b"__keyevent@0__:set", b"watched"), (b"__keyevent@0__:del", b"watched")]
        subscriber.close()
    finally:
        r.config_set("notify-keyspace-events", "")


def test_monitor_shows_the_scripts_commands(r, nova_server):
    monitor_client = redis.Redis(port=nova_server.port)
    with monitor_client.monitor() as monitor:
        r.eval("return redis.call('set', KEYS[1], 'v')", 1, "monitored")
        lines = [monitor.next_command()["command"] for _ in range(2)]
    assert lines[0].startswith("EVAL")
    assert lines[1] == "set monitored v"


def test_info_and_commandstats_count_scripts(r):
    r.script_flush()
    r.eval("return 1", 0)
    r.script_load("return 2")
    info = r.info("memory")
    assert info["number_of_cached_scripts"] == 2
    assert info["used_memory_lua"] > 0
    stats = r.info("commandstats")
    assert stats["cmdstat_eval"]["calls"] >= 1
    assert "cmdstat_script|load" in stats
