"""Bitmaps, BITFIELD, LCS and HyperLogLog through redis-py 6.4.0's own API (the random streams in
tests/differential compare every reply with redis-server; these check the library paths and the limits)."""
import time

import pytest
import redis


def test_bitmap_commands_through_redis_py(r):
    assert r.setbit("flags", 7, 1) == 0
    assert r.setbit("flags", 7, 1) == 1
    assert r.getbit("flags", 7) == 1 and r.getbit("flags", 100) == 0
    assert r.get("flags") == b"\x01"
    r.set("text", "foobar")
    assert r.bitcount("text") == 26
    assert r.bitcount("text", 1, 1) == 6
    assert r.bitcount("text", 5, 30, "BIT") == 17
    assert r.bitpos("text", 1) == 1
    assert r.bitpos("text", 0, 2, -1, "BYTE") == 16
    assert r.bitop("AND", "both", "text", "flags") == 6
    assert r.get("both") == b"\x00" * 6
    assert r.bitop("NOT", "inverted", "flags") == 1
    assert r.get("inverted") == b"\xfe"
    # A bitmap is a string: APPEND, SETRANGE and GETRANGE see the same bytes.
    r.append("flags", b"\x80")
    assert r.getbit("flags", 8) == 1
    r.setrange("flags", 0, b"\xff")
    assert r.bitcount("flags") == 9
    assert r.object("encoding", "flags") == b"raw"


def test_bitfield_builder(r):
    field = r.bitfield("counters")
    field.set("u8", 0, 200).incrby("u8", 0, 100).overflow("SAT").incrby("u8", 8, 300)
    field.overflow("FAIL").incrby("i4", "#4", 10).get("i16", 0)
    assert field.execute() == [0, 44, 255, None, 11519]
    assert r.bitfield_ro("counters", "u8", 0, items=[("u8", 8)]) == [44, 255]
    with pytest.raises(redis.ResponseError, match="BITFIELD_RO only supports the GET subcommand"):
        r.execute_command("BITFIELD_RO", "counters", "SET", "u8", 0, 1)
    with pytest.raises(redis.ResponseError, match="Invalid bitfield type"):
        r.bitfield("counters").get("u64", 0).execute()


def test_bit_offsets_at_the_limit(r):
    # The last bit of a 512 MB string is addressable; the next one is refused without allocating.
    with pytest.raises(redis.ResponseError, match="bit offset is not an integer or out of range"):
        r.setbit("big", 4294967296, 1)
    assert not r.exists("big")
    r.config_set("proto-max-bulk-len", "1mb")
    try:
        assert r.setbit("big", 8 * 1024 * 1024 - 1, 1) == 0
        assert r.strlen("big") == 1024 * 1024
        with pytest.raises(redis.ResponseError, match="bit offset"):
            r.setbit("big", 8 * 1024 * 1024, 1)
    finally:
        r.config_set("proto-max-bulk-len", "512mb")


def test_setbit_at_rising_offsets_grows_in_amortised_time(r):
    # One byte more per command: each growth must not copy the whole string (that was quadratic).
    start = time.monotonic()
    pipe = r.pipeline(transaction=False)
    for offset in range(0, 8 * 400_000, 8):
        pipe.setbit("rising", offset, 1)
    pipe.execute()
    assert r.strlen("rising") == 400_000
    assert r.bitcount("rising") == 400_000
    assert time.monotonic() - start < 60


def test_lcs_through_redis_py(r):
    r.mset({"a": "ohmytext", "b": "mynewtext"})
    assert r.lcs("a", "b") == b"mytext"
    assert r.lcs("a", "b", len=True) == 6
    reply = r.lcs("a", "b", idx=True, minmatchlen=4, withmatchlen=True)
    assert reply == [b"matches", [[[4, 7], [5, 8], 4]], b"len", 6]
    r.lpush("list", "x")
    with pytest.raises(redis.ResponseError, match="The specified keys must contain string values"):
        r.lcs("a", "list")


def test_lcs_refuses_tables_past_proto_max_bulk_len(r):
    r.config_set("proto-max-bulk-len", "1mb")
    try:
        r.mset({"x": "a" * 600, "y": "b" * 600})
        with pytest.raises(redis.ResponseError, match="transient memory for LCS exceeds proto-max-bulk-len"):
            r.lcs("x", "y")
    finally:
        r.config_set("proto-max-bulk-len", "512mb")


def test_hyperloglog_through_redis_py(r):
    assert r.pfadd("visitors", *[f"user-{n}" for n in range(1000)]) == 1
    assert r.pfadd("visitors", "user-1") == 0
    assert abs(r.pfcount("visitors") - 1000) < 20
    r.pfadd("other", *[f"user-{n}" for n in range(500, 1500)])
    assert abs(r.pfcount("visitors", "other") - 1500) < 30
    assert r.pfmerge("all", "visitors", "other")
    assert r.pfcount("all") == r.pfcount("visitors", "other")
    assert r.get("all").startswith(b"HYLL")
    assert r.execute_command("PFDEBUG", "ENCODING", "all") in (b"sparse", "sparse")  # 1,500 registers fit in 3,000 bytes
    r.set("plain", "not an hll")
    with pytest.raises(redis.ResponseError, match="Key is not a valid HyperLogLog string value"):
        r.pfadd("plain", "x")
    assert r.execute_command("PFSELFTEST") in (b"OK", "OK", True)


def test_hll_sparse_limit_follows_the_configuration(r):
    r.config_set("hll-sparse-max-bytes", 100)
    try:
        r.pfadd("small", *range(10))
        assert r.execute_command("PFDEBUG", "ENCODING", "small") in (b"sparse", "sparse")
        r.pfadd("small", *range(10, 200))
        assert r.execute_command("PFDEBUG", "ENCODING", "small") in (b"dense", "dense")
        assert len(r.get("small")) == 12304
    finally:
        r.config_set("hll-sparse-max-bytes", 3000)


def test_pfcount_caches_its_result_in_the_value(r):
    r.pfadd("cached", "a", "b", "c")
    stale = r.get("cached")
    assert stale[15] & 0x80  # PFADD marked the cached cardinality stale
    assert r.pfcount("cached") == 3
    fresh = r.get("cached")
    assert fresh[15] & 0x80 == 0 and fresh[8] == 3
    # The TTL survives both the cache write and further adds.
    r.expire("cached", 100)
    r.pfadd("cached", "d")
    r.pfcount("cached")
    assert r.ttl("cached") > 0
