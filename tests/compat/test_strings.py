"""String commands through redis-py 6.4.0."""
import time

import pytest
import redis


def test_get_set_and_options(r):
    assert r.set("k", "v") is True
    assert r.get("k") == b"v"
    assert r.set("k", "w", nx=True) is None
    assert r.set("missing", "w", xx=True) is None
    assert r.set("k", "w", xx=True, get=True) == b"v"
    assert r.set("k2", "x", ex=100)
    assert 99 <= r.ttl("k2") <= 100
    assert r.set("k2", "y", keepttl=True)
    assert r.ttl("k2") > 0
    assert r.set("k2", "z")
    assert r.ttl("k2") == -1
    assert r.set("k3", "a", px=100000)
    assert 99000 < r.pttl("k3") <= 100000
    future = int(time.time()) + 500
    assert r.set("k4", "b", exat=future)
    assert abs(r.expiretime("k4") - future) <= 1
    assert r.set("k5", "c", pxat=future * 1000)
    assert r.pexpiretime("k5") == future * 1000


def test_set_errors(r):
    with pytest.raises(redis.ResponseError, match="invalid expire time in 'set' command"):
        r.execute_command("SET", "k", "v", "EX", "0")
    with pytest.raises(redis.ResponseError, match="syntax error"):
        r.execute_command("SET", "k", "v", "NX", "XX")
    with pytest.raises(redis.ResponseError, match="value is not an integer or out of range"):
        r.execute_command("SET", "k", "v", "EX", "ten")
    with pytest.raises(redis.ResponseError, match="invalid expire time in 'setex' command"):
        r.setex("k", -1, "v")


def test_set_with_past_absolute_time_leaves_no_readable_key(r):
    before = r.info("stats")["expired_keys"]
    assert r.set("gone", "v", pxat=1000)
    assert r.get("gone") is None
    assert r.ttl("gone") == -2
    assert r.info("stats")["expired_keys"] == before + 1


def test_setnx_setex_psetex_getset_getdel(r):
    assert r.setnx("a", "1") is True
    assert r.setnx("a", "2") is False
    assert r.setex("b", 50, "x")
    assert 49 <= r.ttl("b") <= 50
    assert r.psetex("c", 50000, "y")
    assert 49000 <= r.pttl("c") <= 50000
    assert r.getset("b", "new") == b"x"
    assert r.ttl("b") == -1
    assert r.getdel("b") == b"new"
    assert r.exists("b") == 0
    assert r.getdel("b") is None


def test_getex(r):
    r.set("k", "v")
    assert r.getex("k", ex=100) == b"v"
    assert r.ttl("k") > 90
    assert r.getex("k", persist=True) == b"v"
    assert r.ttl("k") == -1
    assert r.getex("k", pxat=1000) == b"v"
    assert r.exists("k") == 0


def test_mget_mset_msetnx(r):
    assert r.mset({"a": "1", "b": "2"})
    assert r.mget("a", "b", "c") == [b"1", b"2", None]
    assert r.msetnx({"c": "3", "a": "x"}) is False
    assert r.get("c") is None
    assert r.msetnx({"c": "3", "d": "4"}) is True
    with pytest.raises(redis.ResponseError, match="wrong number of arguments for 'mset' command"):
        r.execute_command("MSET", "a", "1", "b")


def test_append_strlen_ranges(r):
    assert r.append("s", "Hello") == 5
    assert r.append("s", " World") == 11
    assert r.get("s") == b"Hello World"
    assert r.strlen("s") == 11
    assert r.strlen("nope") == 0
    assert r.getrange("s", 0, 4) == b"Hello"
    assert r.getrange("s", -5, -1) == b"World"
    assert r.getrange("s", 5, 1) == b""
    assert r.getrange("nope", 0, -1) == b""
    assert r.setrange("s", 6, "Redis") == 11
    assert r.get("s") == b"Hello Redis"
    assert r.setrange("z", 3, "x") == 4
    assert r.get("z") == b"\x00\x00\x00x"
    with pytest.raises(redis.ResponseError, match="offset is out of range"):
        r.setrange("z", -1, "x")


def test_counters(r):
    assert r.incr("n") == 1
    assert r.incrby("n", 10) == 11
    assert r.decr("n") == 10
    assert r.decrby("n", 20) == -10
    r.set("n", "9223372036854775807")
    with pytest.raises(redis.ResponseError, match="increment or decrement would overflow"):
        r.incr("n")
    r.set("t", "abc")
    with pytest.raises(redis.ResponseError, match="value is not an integer or out of range"):
        r.incr("t")
    r.set("e", "1", ex=100)
    r.incr("e")
    assert r.ttl("e") > 0, "INCR keeps the expiry"


def test_incrbyfloat(r):
    assert r.incrbyfloat("f", 10.5) == 10.5
    assert r.incrbyfloat("f", 0.1) == pytest.approx(10.6)
    assert r.get("f") == b"10.6"
    r.set("f", "5.0e3")
    assert r.incrbyfloat("f", "2.0e2") == 5200
    assert r.get("f") == b"5200"
    with pytest.raises(redis.ResponseError, match="increment would produce NaN or Infinity"):
        r.incrbyfloat("f", "inf")
    r.set("t", "abc")
    with pytest.raises(redis.ResponseError, match="value is not a valid float"):
        r.incrbyfloat("t", 1)


def test_object_encoding_matches_redis(r):
    r.set("i", "12345")
    r.set("e", "short")
    r.set("raw", "x" * 45)
    assert r.object("encoding", "i") == b"int"
    assert r.object("encoding", "e") == b"embstr"
    assert r.object("encoding", "raw") == b"raw"
    r.append("e", "!")
    assert r.object("encoding", "e") == b"raw"
    assert r.object("encoding", "missing") is None
    assert r.object("refcount", "i") == 1 or r.object("refcount", "i") == 2147483647


def test_binary_safe(r):
    key = b"\x00\xff\r\n key"
    value = bytes(range(256)) * 10
    r.set(key, value)
    assert r.get(key) == value
    assert r.strlen(key) == 2560


def test_large_value(r):
    value = b"z" * (8 * 1024 * 1024)
    r.set("big", value)
    assert r.get("big") == value
