"""Which writes count as a change of a WATCHed key, compared with redis-server.

Redis signals a key as modified only when a command really changed it: SADD of a member already there,
SMOVE into a set that already holds the member or an empty *STORE result for a missing destination do not
abort a transaction watching that key. Each case sets keys up, WATCHes one of them, runs one command from
a second connection and then MULTI / PING / EXEC: the command's reply and whether EXEC was aborted must be
the same on both servers. (Found by the collections stream, seed 568445614: SMOVE into a set that already
held the member aborted the watcher on nova only.)"""
import pytest

from support import resp

SETUP = [
    "SET str 10", "SET other x", "SET ttl v EX 1000",
    "SADD s1 a b c", "SADD s2 a z", "HSET h f 1 g 2", "ZADD z 1 a 2 b", "RPUSH l a b c",
]

CASES = [
    # (watched key, command)
    ("s2", "SMOVE s1 s2 a"), ("s1", "SMOVE s1 s2 a"), ("s2", "SMOVE s1 s2 b"), ("s1", "SMOVE s1 s2 nope"),
    ("s2", "SMOVE s1 s1 a"), ("s1", "SMOVE s1 s1 a"), ("new", "SMOVE s1 new a"),
    ("s1", "SADD s1 a"), ("s1", "SADD s1 q"), ("s1", "SREM s1 nope"), ("s1", "SREM s1 a"),
    ("s1", "SPOP s1 0"), ("none", "SPOP none"),
    ("dst", "SINTERSTORE dst s1 none"), ("str", "SINTERSTORE str s1 none"), ("dst", "SUNIONSTORE dst none"),
    ("dst", "SDIFFSTORE dst s1 s1"), ("s2", "SINTERSTORE s2 s1 s2"),
    ("h", "HSET h f 1"), ("h", "HSETNX h f 5"), ("h", "HDEL h nope"), ("h", "HDEL h f"),
    ("h", "HINCRBY h f 0"), ("h", "HINCRBYFLOAT h f 0"),
    ("z", "ZADD z 1 a"), ("z", "ZADD z NX 5 a"), ("z", "ZADD z XX 5 nope"), ("z", "ZADD z GT 0 a"),
    ("z", "ZADD z LT 9 a"), ("z", "ZINCRBY z 0 a"), ("z", "ZREM z nope"), ("z", "ZREMRANGEBYSCORE z 5 9"),
    ("z", "ZREMRANGEBYRANK z 5 9"), ("z", "ZREMRANGEBYLEX z [x [y"), ("dst", "ZUNIONSTORE dst 1 none"),
    ("z", "ZINTERSTORE z 2 z none"), ("z", "ZPOPMIN z 0"), ("dst", "ZRANGESTORE dst z 5 9"),
    ("l", "LREM l 0 nope"), ("l", "LREM l 0 a"), ("l", "LTRIM l 0 -1"), ("l", "LSET l 0 a"),
    ("l", "LINSERT l BEFORE nope x"), ("none", "LPUSHX none a"), ("l", "LPOS l a"),
    ("l", "RPOPLPUSH none l"), ("l", "LMOVE l l LEFT RIGHT"), ("l", "LPOP l 0"), ("none", "LMPOP 1 none LEFT"),
    ("str", "SET str 10"), ("str", "SETNX str 5"), ("str", "SET str 5 NX"), ("str", "SET str 5 XX GET"),
    ("str", "APPEND str ''"), ("str", "INCRBY str 0"), ("str", "SETRANGE str 0 ''"), ("str", "SETRANGE str 0 1"),
    ("str", "GETEX str PERSIST"), ("ttl", "GETEX ttl PERSIST"), ("str", "GETEX str"), ("none", "GETDEL none"),
    ("none", "DEL none"), ("none", "UNLINK none"), ("none", "EXPIRE none 10"), ("str", "EXPIRE str 100"),
    ("str", "EXPIRE str 100 XX"), ("ttl", "EXPIRE ttl 100 NX"), ("str", "PERSIST str"), ("ttl", "PERSIST ttl"),
    ("str", "PEXPIREAT str 1"), ("str", "RENAME str str"), ("other", "RENAMENX str other"),
    ("other", "COPY str other"), ("other", "COPY str other REPLACE"), ("str", "MOVE str 1"),
    ("str", "TOUCH str"), ("str", "OBJECT ENCODING str"), ("str", "FLUSHDB"), ("none", "FLUSHALL"), ("str", "SWAPDB 0 1"),
    ("none", "SWAPDB 0 1"),
]


def run_case(port, watched, command):
    client = resp.Connection(port, strict_nulls=True)
    other = resp.Connection(port, strict_nulls=True)
    try:
        assert client.call(b"FLUSHALL") == "OK"
        for line in SETUP:
            client.call(*line.split())
        assert client.call(b"WATCH", watched.encode()) == "OK"
        args = [b"" if word == "''" else word.encode() for word in command.split()]
        reply = other.call(*args)
        executed = client.pipeline([[b"MULTI"], [b"PING"], [b"EXEC"]])[2]
        return reply, "aborted" if executed == resp.NULL_ARRAY else "executed"
    finally:
        client.close()
        other.close()


@pytest.mark.parametrize("watched,command", CASES, ids=[f"{w}:{c}" for w, c in CASES])
def test_a_write_invalidates_watch_as_redis_does(pair, watched, command):
    nova, ref = pair
    assert run_case(nova.port, watched, command) == run_case(ref.port, watched, command)
