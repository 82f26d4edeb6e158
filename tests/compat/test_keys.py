"""Key-space commands through redis-py 6.4.0."""
import time

import pytest
import redis


def test_del_exists_type_touch(r):
    r.mset({"a": "1", "b": "2"})
    assert r.exists("a", "b", "c", "a") == 3
    assert r.type("a") == b"string"
    assert r.type("nope") == b"none"
    assert r.touch("a", "c") == 1
    assert r.delete("a", "c") == 1
    assert r.unlink("b") == 1
    assert r.exists("a", "b") == 0


def test_rename(r):
    r.set("a", "1", ex=100)
    assert r.rename("a", "b")
    assert r.get("b") == b"1"
    assert r.ttl("b") > 0
    with pytest.raises(redis.ResponseError, match="no such key"):
        r.rename("a", "c")
    r.set("c", "3")
    assert r.renamenx("b", "c") is False
    assert r.renamenx("b", "d") is True


def test_keys_and_patterns(r):
    r.mset({"hello": 1, "hallo": 2, "hxllo": 3, "hllo": 4, "heeeello": 5, "h*llo": 6})
    assert sorted(r.keys("h?llo")) == [b"h*llo", b"hallo", b"hello", b"hxllo"]
    assert sorted(r.keys("h*llo")) == [b"h*llo", b"hallo", b"heeeello", b"hello", b"hllo", b"hxllo"]
    assert sorted(r.keys("h[ae]llo")) == [b"hallo", b"hello"]
    assert sorted(r.keys("h[^e]llo")) == [b"h*llo", b"hallo", b"hxllo"]
    assert sorted(r.keys("h[a-b]llo")) == [b"hallo"]
    assert r.keys("h\\*llo") == [b"h*llo"]


def test_scan_full_iteration_returns_every_key(r):
    keys = {f"key:{i}".encode() for i in range(5000)}
    pipe = r.pipeline(transaction=False)
    for k in keys:
        pipe.set(k, 1)
    pipe.execute()
    assert set(r.scan_iter(count=100)) == keys
    assert set(r.scan_iter(match="key:1*")) == {k for k in keys if k.startswith(b"key:1")}
    assert set(r.scan_iter(_type="string", count=1000)) == keys
    assert list(r.scan_iter(_type="hash")) == []


def test_scan_keeps_keys_present_throughout_while_others_change(r):
    stable = {f"stable:{i}".encode() for i in range(3000)}
    r.mset({k: 1 for k in stable})
    seen = set()
    cursor = 0
    i = 0
    while True:
        cursor, batch = r.scan(cursor, count=50)
        seen.update(batch)
        # Churn: add and remove other keys while iterating (forces table growth and shrink).
        r.mset({f"churn:{i}:{j}": 1 for j in range(100)})
        r.delete(*[f"churn:{i - 1}:{j}" for j in range(100)])
        i += 1
        if cursor == 0:
            break
    assert stable <= seen


def test_scan_errors(r):
    with pytest.raises(redis.ResponseError, match="invalid cursor"):
        r.execute_command("SCAN", "abc")
    with pytest.raises(redis.ResponseError, match="syntax error"):
        r.execute_command("SCAN", "0", "COUNT", "0")


def test_randomkey(r):
    assert r.randomkey() is None
    r.mset({"a": 1, "b": 2})
    assert r.randomkey() in (b"a", b"b")


def test_expire_family(r):
    r.set("k", "v")
    assert r.expire("k", 100)
    assert 99 <= r.ttl("k") <= 100
    assert r.expire("k", 200, nx=True) is False
    assert r.expire("k", 200, xx=True) is True
    assert r.expire("k", 100, gt=True) is False
    assert r.expire("k", 300, gt=True) is True
    assert r.expire("k", 400, lt=True) is False
    assert r.pexpire("k", 50000)
    assert 49000 < r.pttl("k") <= 50000
    at = int(time.time()) + 1000
    assert r.expireat("k", at)
    assert r.expiretime("k") == at
    assert r.pexpireat("k", at * 1000 + 5)
    assert r.pexpiretime("k") == at * 1000 + 5
    assert r.persist("k") is True
    assert r.persist("k") is False
    assert r.ttl("k") == -1
    assert r.ttl("missing") == -2
    assert r.pttl("missing") == -2
    assert r.expire("k", -1) is True
    assert r.exists("k") == 0
    assert r.expire("missing", 10) is False
    with pytest.raises(redis.ResponseError, match="NX and XX, GT or LT options at the same time are not compatible"):
        r.execute_command("EXPIRE", "k", "10", "NX", "XX")
    with pytest.raises(redis.ResponseError, match="Unsupported option FOO"):
        r.execute_command("EXPIRE", "k", "10", "FOO")


def test_keys_expire_lazily_and_actively(r):
    r.set("lazy", "v", px=50)
    time.sleep(0.1)
    assert r.get("lazy") is None
    before = r.info("stats")["expired_keys"]
    r.mset({f"active:{i}": 1 for i in range(1000)})
    for i in range(1000):
        r.pexpire(f"active:{i}", 100)
    r.set("keep", 1)
    deadline = time.time() + 5
    while time.time() < deadline and r.dbsize() > 1:
        time.sleep(0.1)
    assert r.dbsize() == 1, "an expired key nobody touches is removed by the active cycle"
    assert r.info("stats")["expired_keys"] >= before + 1000


def test_move_copy_swapdb(r):
    r.set("k", "v", ex=100)
    assert r.move("k", 1) is True
    assert r.exists("k") == 0
    r1 = redis.Redis(port=r.connection_pool.connection_kwargs["port"], db=1)
    assert r1.get("k") == b"v"
    assert r1.ttl("k") > 0
    with pytest.raises(redis.ResponseError, match="source and destination objects are the same"):
        r1.move("k", 1)
    with pytest.raises(redis.ResponseError, match="DB index is out of range"):
        r1.move("k", 16)
    assert r1.copy("k", "k2") is True
    assert r1.copy("k", "k2") is False
    assert r1.copy("k", "k2", replace=True) is True
    assert r1.copy("k", "k", destination_db=0) is True
    assert r.get("k") == b"v"
    r.set("zero", "0")
    assert r.swapdb(0, 1)
    assert r.get("k2") == b"v"
    assert r1.get("zero") == b"0"
    r1.close()


def test_dbsize_flushdb_flushall(r):
    r.mset({"a": 1, "b": 2})
    assert r.dbsize() == 2
    assert r.flushdb()
    assert r.dbsize() == 0
    r.set("a", 1)
    assert r.flushdb(asynchronous=True)
    r.set("a", 1)
    assert r.flushall()
    assert r.dbsize() == 0
    with pytest.raises(redis.ResponseError, match="syntax error"):
        r.execute_command("FLUSHALL", "NOW")


def test_object_idletime_and_freq(r):
    r.set("k", "v")
    assert r.object("idletime", "k") == 0
    with pytest.raises(redis.ResponseError, match="An LFU maxmemory policy is not selected"):
        r.object("freq", "k")
    r.config_set("maxmemory-policy", "allkeys-lfu")
    try:
        r.get("k")
        assert r.object("freq", "k") >= 0
        with pytest.raises(redis.ResponseError, match="An LFU maxmemory policy is selected"):
            r.object("idletime", "k")
    finally:
        r.config_set("maxmemory-policy", "noeviction")


def test_expired_values_give_their_memory_back(r):
    before = r.info("memory")["used_memory"]
    value = "x" * 10_000
    pipe = r.pipeline(transaction=False)
    for i in range(2000):
        pipe.set(f"mem:{i}", value, px=300)
    pipe.execute()
    grown = r.info("memory")["used_memory"]
    assert grown - before > 15_000_000
    deadline = time.time() + 5
    while time.time() < deadline and r.dbsize() > 0:
        time.sleep(0.1)
    assert r.dbsize() == 0
    assert r.info("memory")["used_memory"] - before < 5_000_000
