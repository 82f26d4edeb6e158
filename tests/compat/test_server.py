"""Server commands through redis-py 6.4.0: INFO, CONFIG, TIME, COMMAND."""
import time

import pytest
import redis


def test_info_sections_and_fields(r):
    r.set("a", 1)
    r.get("a")
    r.get("nope")
    info = r.info()
    for field in ["redis_version", "uptime_in_seconds", "connected_clients", "used_memory", "used_memory_human",
                  "total_commands_processed", "total_connections_received", "keyspace_hits", "keyspace_misses",
                  "expired_keys", "evicted_keys", "instantaneous_ops_per_sec", "role", "used_cpu_sys"]:
        assert field in info, field
    assert info["role"] == "master"
    assert info["db0"]["keys"] == 1
    stats = r.info("stats")
    hits, misses = stats["keyspace_hits"], stats["keyspace_misses"]
    r.get("a")
    r.get("nope")
    stats = r.info("stats")
    assert stats["keyspace_hits"] == hits + 1
    assert stats["keyspace_misses"] == misses + 1
    assert "cmdstat_get" in r.info("commandstats")
    assert set(r.info("server", "clients")) >= {"redis_version", "connected_clients"}
    assert r.info("nosuchsection") == {}


def test_keyspace_line(r):
    r1 = redis.Redis(port=r.connection_pool.connection_kwargs["port"], db=1)
    r1.set("x", 1, ex=100)
    r1.set("y", 1)
    line = r.info("keyspace")["db1"]
    assert line["keys"] == 2 and line["expires"] == 1 and 0 < line["avg_ttl"] <= 100000
    r1.close()


def test_ops_per_sec_reflects_load(r):
    deadline = time.time() + 1.5
    while time.time() < deadline:
        pipe = r.pipeline(transaction=False)
        for _ in range(200):
            pipe.ping()
        pipe.execute()
    assert r.info("stats")["instantaneous_ops_per_sec"] > 100


def test_config_get_set(r):
    assert r.config_get("maxmemory") == {"maxmemory": "0"}
    assert r.config_set("maxmemory", "10mb")
    assert r.config_get("maxmemory") == {"maxmemory": "10485760"}
    assert r.config_set("maxmemory", 0)
    cfg = r.config_get("*")
    assert len(cfg) > 180
    assert cfg["databases"] == "16"
    assert cfg["save"] == "3600 1 300 100 60 10000"
    with pytest.raises(redis.ResponseError, match="Unknown option or number of arguments for CONFIG SET - 'nosuch'"):
        r.config_set("nosuch", 1)
    assert r.config_resetstat()
    assert r.info("stats")["keyspace_hits"] == 0
    with pytest.raises(redis.ResponseError, match="The server is running without a config file"):
        r.config_rewrite()


def test_time_lastsave(r):
    seconds, micros = r.time()
    assert abs(seconds - time.time()) < 5
    assert 0 <= micros < 1_000_000
    assert abs(r.lastsave().timestamp() - time.time()) < 3600


def test_command_introspection(r):
    assert r.command_count() > 50
    info = r.execute_command("COMMAND", "INFO", "get")
    assert info["get"]["arity"] == 2 and info["get"]["flags"] == ["readonly", "fast"]
    assert r.command_getkeys("MSET", "a", "1", "b", "2") in (["a", "b"], [b"a", b"b"])
    names = r.command_list()
    assert b"get" in names or "get" in names
    assert set(r.command_list(category="string")) >= {b"get", b"set"} or "get" in r.command_list(category="string")


def test_maxmemory_eviction_and_oom(r):
    used = r.info("memory")["used_memory"]
    try:
        r.config_set("maxmemory-policy", "allkeys-lru")
        r.config_set("maxmemory", used + 2 * 1024 * 1024)
        for i in range(2000):
            r.set(f"fill:{i}", "x" * 4096)
        assert r.info("stats")["evicted_keys"] > 0
        assert r.info("memory")["used_memory"] <= used + 3 * 1024 * 1024
        r.config_set("maxmemory-policy", "noeviction")
        r.config_set("maxmemory", 1)
        with pytest.raises(redis.exceptions.OutOfMemoryError, match="command not allowed when used memory"):
            r.set("x", "y")
        assert r.dbsize() > 0, "reads still work when writes are refused"
    finally:
        r.config_set("maxmemory", 0)
        r.config_set("maxmemory-policy", "noeviction")
