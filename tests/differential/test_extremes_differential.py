"""Every command that takes a number, with extreme numbers, against redis-server 7.0: the same reply (the
same error text, byte for byte), and the server never stops. This is the audit of issue 14 kept as a
test: Double→Int conversions, length and offset arithmetic, TTL arithmetic, counts, ranges, CONFIG values.

Each case runs on freshly built data (a string, an integer, a float, a list, a set, a sorted set, a hash)
so that a case cannot change what the next one sees. Random picks are compared by shape; blocking
commands by whether they block (all sent at once on their own connections, then read after a pause).
"""
import socket
import time

import pytest

from support import resp

NUMBERS = [
    "0", "-0", "1", "-1", "2", "7", "-7", "100", "-100", "1000",
    "2147483647", "2147483648", "-2147483648", "-2147483649", "4294967295", "4294967296",
    "9223372036854775807", "-9223372036854775807", "-9223372036854775808", "9223372036854775808",
    "18446744073709551615", "18446744073709551616", "99999999999999999999999",
    "4611686018427387903", "4611686018427387904", "-4611686018427387904", "-4611686018427387905",
    "9223372036854775", "9223372036854776", "9223372036854775807000", "922337203685477580",
    "536870912", "536870913", "1e16", "9.2e15", "9.3e15", "1e19", "1e300", "-1e300", "1e-300", "1e400",
    "0.5", "-0.5", "1.5", "-1.5", "0x10", "010", "+1", " 1", "1 ", "1.", ".5", "inf", "-inf", "+inf",
    "infinity", "nan", "-nan", "1,5", "", "-", "+", "(1", "(-1", "[a", "(inf", "(nan", "1e", "--1",
]

FIXTURE = [
    ["SET", "str", "hello world"],
    ["SET", "int", "10"],
    ["SET", "float", "1.5"],
    ["RPUSH", "list", "a", "b", "c", "a", "b"],
    ["SADD", "set", "a", "b", "c"],
    ["SADD", "iset", "1", "2", "3"],
    ["ZADD", "zset", "1", "a", "2", "b", "3", "c"],
    ["HSET", "hash", "f", "5", "g", "1.5", "h", "x"],
    ["SET", "ttl", "v", "EX", "500"],
]

# {n} is the extreme number; `~` stands for a space inside one argument. `random` marks replies compared
# by shape (random picks, SCAN cursors and order, client ids).
TEMPLATES = [
    # strings and expiry arithmetic
    "SET str v EX {n}", "SET str v PX {n}", "SET str v EXAT {n}", "SET str v PXAT {n}",
    "SETEX str {n} v", "PSETEX str {n} v", "GETEX str EX {n}", "GETEX str PX {n}", "GETEX str EXAT {n}",
    "GETEX str PXAT {n}", "EXPIRE str {n}", "PEXPIRE str {n}", "EXPIREAT str {n}", "PEXPIREAT str {n}",
    "EXPIRE ttl {n} GT", "PEXPIRE ttl {n} LT", "EXPIRE ttl {n} NX",
    "INCRBY int {n}", "DECRBY int {n}", "INCRBYFLOAT float {n}", "INCRBYFLOAT int {n}",
    "SETRANGE str {n} x", "GETRANGE str {n} 5", "GETRANGE str 0 {n}", "SUBSTR str {n} {n}",
    "SET int {n}", "INCR int", "MSET a {n} b {n}",
    # lists
    "LRANGE list {n} 2", "LRANGE list 0 {n}", "LINDEX list {n}", "LSET list {n} x", "LTRIM list {n} 3",
    "LTRIM list 0 {n}", "LPOS list a RANK {n}", "LPOS list a COUNT {n}", "LPOS list a MAXLEN {n}",
    "LPOS list a RANK 1 COUNT 0 MAXLEN {n}", "LPOP list {n}", "RPOP list {n}", "LREM list {n} a",
    "LMPOP {n} list LEFT", "LMPOP 1 list LEFT COUNT {n}", "LINSERT list BEFORE {n} x",
    # sets
    "SRANDMEMBER set {n} random", "SPOP set {n} random", "SINTERCARD {n} set", "SINTERCARD 1 set LIMIT {n}",
    "SMISMEMBER iset {n}", "SADD iset {n}",
    # sorted sets
    "ZADD zset {n} m", "ZADD zset XX CH INCR {n} a", "ZINCRBY zset {n} a", "ZRANGE zset {n} 1",
    "ZRANGE zset 0 {n}", "ZRANGEBYSCORE zset {n} +inf", "ZRANGEBYSCORE zset -inf {n}",
    "ZRANGEBYSCORE zset -inf +inf LIMIT {n} 2", "ZRANGEBYSCORE zset -inf +inf LIMIT 0 {n}",
    "ZRANGE zset 0 -1 BYSCORE LIMIT {n} 1", "ZREVRANGEBYSCORE zset {n} -inf", "ZCOUNT zset {n} 10",
    "ZLEXCOUNT zset {n} +", "ZRANGEBYLEX zset - + LIMIT 0 {n}", "ZREMRANGEBYRANK zset {n} 1",
    "ZREMRANGEBYSCORE zset {n} 2", "ZRANDMEMBER zset {n} random", "ZRANDMEMBER zset {n} WITHSCORES random",
    "ZPOPMIN zset {n}", "ZPOPMAX zset {n}", "ZMPOP 1 zset MIN COUNT {n}", "ZMPOP {n} zset MIN",
    "ZUNIONSTORE dst {n} zset", "ZUNION 1 zset WEIGHTS {n}", "ZINTER 2 zset zset WEIGHTS 1 {n} WITHSCORES",
    "ZINTERCARD 1 zset LIMIT {n}", "ZINTERCARD {n} zset", "ZSCORE zset {n}", "ZMSCORE zset {n}",
    "ZRANGESTORE dst zset {n} 1",
    # hashes
    "HINCRBY hash f {n}", "HINCRBYFLOAT hash g {n}", "HINCRBYFLOAT hash f {n}", "HRANDFIELD hash {n} random",
    "HRANDFIELD hash {n} WITHVALUES random",
    # keys and scanning
    "SCAN {n} random", "SCAN 0 COUNT {n} random", "SSCAN set {n} random", "SSCAN set 0 COUNT {n} random",
    "HSCAN hash 0 COUNT {n} random", "ZSCAN zset {n} random", "SELECT {n}", "MOVE str {n}", "SWAPDB 0 {n}", "COPY str copy DB {n}",
    "OBJECT FREQ str", "EXPIRETIME str", "RENAME str {n}", "DEL {n}", "EXISTS {n}",
    # connection and server
    "HELLO {n} random", "CLIENT KILL ID {n}", "CLIENT UNBLOCK {n}", "CLIENT TRACKING ON REDIRECT {n}",
    "CLIENT LIST ID {n}", "CLIENT NO-EVICT {n}", "ACL LOG {n}", "ECHO {n}", "PING {n}",
    "CONFIG SET maxmemory {n}", "CONFIG SET hz {n}", "CONFIG SET timeout {n}", "CONFIG SET maxmemory-samples {n}",
    "CONFIG SET lfu-log-factor {n}", "CONFIG SET list-max-listpack-size {n}", "CONFIG SET proto-max-bulk-len {n}",
    "CONFIG SET client-query-buffer-limit {n}", "CONFIG SET hash-max-listpack-entries {n}",
    "CONFIG SET zset-max-listpack-value {n}", "CONFIG SET set-max-intset-entries {n}",
    "CONFIG SET active-expire-effort {n}", "CONFIG SET tracking-table-max-keys {n}",
    "CONFIG SET auto-aof-rewrite-percentage {n}", "CONFIG SET client-output-buffer-limit normal~{n}~0~0",
    "CONFIG SET client-output-buffer-limit pubsub~0~{n}~0", "CONFIG SET client-output-buffer-limit normal~0~0~{n}",
    "COMMAND GETKEYS ZUNIONSTORE dst {n} zset", "COMMAND GETKEYS LMPOP {n} a b LEFT",
    "PUBLISH ch {n}", "PUBSUB NUMSUB {n}",
]
# Parameters changed by the CONFIG SET cases, put back after each.
CONFIG_DEFAULTS = ["maxmemory", "0", "hz", "10", "timeout", "0", "maxmemory-samples", "5", "lfu-log-factor", "10",
                   "list-max-listpack-size", "-2", "proto-max-bulk-len", "536870912",
                   "client-query-buffer-limit", "1073741824", "hash-max-listpack-entries", "128",
                   "zset-max-listpack-value", "64", "set-max-intset-entries", "512", "active-expire-effort", "1",
                   "tracking-table-max-keys", "1000000", "maxclients", "10000",
                   "auto-aof-rewrite-percentage", "100", "client-output-buffer-limit", "normal 0 0 0"]

BLOCKING = ["BLPOP empty {n}", "BRPOP empty {n}", "BRPOPLPUSH empty dst {n}", "BLMOVE empty dst LEFT RIGHT {n}",
            "BZPOPMIN empty {n}", "BZPOPMAX empty {n}", "BLMPOP {n} 1 empty LEFT", "BZMPOP {n} 1 empty MIN",
            "BLMPOP 0.01 1 empty LEFT COUNT {n}"]


# Where redis-server 7.0 itself goes wrong, the case is left out (and said why).
SKIPPED = {
    # numkeys * step overflows in Redis's key-spec arithmetic and it answers keys it should refuse.
    "COMMAND GETKEYS ZUNIONSTORE dst {n} zset": {"-9223372036854775807"},
    "COMMAND GETKEYS LMPOP {n} a b LEFT": {"-9223372036854775807"},
}
RANDOM_PICKS = ("SRANDMEMBER", "ZRANDMEMBER", "HRANDFIELD")


def cases(template):
    for number in NUMBERS:
        if number in SKIPPED.get(template, ()):
            continue
        # Millions of picks with repetition: Redis builds the reply (or dies trying, at -3e9); this server
        # disconnects past 64 MB (test_unbounded_random_picks_disconnect_the_client).
        if template.startswith(RANDOM_PICKS) and is_integer(number) and int(number) < -1_000_000:
            continue
        yield number


def is_integer(text):
    try:
        int(text)
        return text.strip() == text
    except ValueError:
        return False


def words(template, number):
    parts = template.split(" ")
    return [(number if p == "{n}" else p.replace("{n}", number)).replace("~", " ") for p in parts if p != "random"]


def shape(reply):
    if isinstance(reply, resp.Error):
        return reply
    if isinstance(reply, list):
        return ("array", len(reply))
    return type(reply).__name__


def run_case(conn, template, number):
    conn.pipeline([["FLUSHALL"]] + FIXTURE)
    reply = conn.call(*words(template, number))
    if template.startswith("CONFIG SET") and not isinstance(reply, resp.Error):
        conn.call("CONFIG", "SET", *CONFIG_DEFAULTS)
    if template.startswith("SELECT") and not isinstance(reply, resp.Error):
        conn.call("SELECT", "0")
    if template.startswith("HELLO") and isinstance(reply, (list, dict)):
        conn.call("HELLO", "2")
    return shape(reply) if template.endswith("random") else reply


@pytest.mark.parametrize("template", TEMPLATES)
def test_extreme_numbers_answer_as_redis(pair, template):
    nova, ref = pair
    a = resp.Connection(nova.port, strict_nulls=True)
    b = resp.Connection(ref.port, strict_nulls=True)
    try:
        differences = []
        for number in cases(template):
            ours = run_case(a, template, number)
            theirs = run_case(b, template, number)
            if ours != theirs:
                differences.append(f"{' '.join(words(template, number))!r}: nova {ours!r} redis {theirs!r}")
        assert not differences, "\n".join(differences[:20])
    finally:
        a.close()
        b.close()
    assert nova.alive()


def test_unbounded_random_picks_disconnect_the_client(pair):
    """SRANDMEMBER/ZRANDMEMBER/HRANDFIELD with a count of billions: a reply no data bounds. Redis 7.0
    allocates until the system kills it; here the client is disconnected once the reply is seen to pass
    64 MB (`client-output-buffer-limit normal` when set), at once, and the server goes on."""
    nova, _ = pair
    conn = resp.Connection(nova.port)
    conn.pipeline([["FLUSHALL"]] + FIXTURE)
    for command in (["SRANDMEMBER", "set", "-3000000000"], ["ZRANDMEMBER", "zset", "-9223372036854775807"],
                    ["ZRANDMEMBER", "zset", "-4611686018427387903", "WITHSCORES"],
                    ["HRANDFIELD", "hash", "-2147483648", "WITHVALUES"]):
        started = time.monotonic()
        with pytest.raises((ConnectionError, OSError)):
            conn.call(*command)
        assert time.monotonic() - started < 1.0
        conn.close()
        conn = resp.Connection(nova.port)
        assert conn.call("PING") == "PONG"
    # Large but bounded: answered in full.
    assert len(conn.call("SRANDMEMBER", "set", "-1000000")) == 1_000_000
    conn.close()
    assert nova.alive()


def times_out_soon(number):
    """A timeout of a few seconds: whether it has passed when the replies are read depends on how long
    opening the connections took, so those cases are waited for until they time out."""
    try:
        return 0.5 < float(number) < 10 and number == number.strip()
    except ValueError:
        return False


def blocking_outcomes(port):
    """Sends every blocking case on its own connection, waits, and reads: the reply, or BLOCKED."""
    sockets = []
    for template in BLOCKING:
        for number in NUMBERS:
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(resp.encode(*words(template, number)))
            sockets.append((template, number, s))
    time.sleep(0.8)
    outcomes = {}
    for template, number, s in sockets:
        if times_out_soon(number):
            s.settimeout(15)
        else:
            s.setblocking(False)
        try:
            data = s.recv(4096)
        except (BlockingIOError, TimeoutError):
            data = b"BLOCKED"
        s.close()
        # Timed out within the pause (0.01 s and the like) and "nil" are the same outcome here.
        outcomes[(template, number)] = b"NULL" if data in (b"*-1\r\n", b"$-1\r\n") else data
    return outcomes


def test_blocking_timeouts_answer_as_redis(pair):
    nova, ref = pair
    ours, theirs = blocking_outcomes(nova.port), blocking_outcomes(ref.port)
    differences = [f"{template.replace('{n}', repr(number))}: nova {ours[(template, number)]!r} "
                   f"redis {theirs[(template, number)]!r}"
                   for template, number in ours if ours[(template, number)] != theirs[(template, number)]]
    assert not differences, "\n".join(differences[:30])
    assert nova.alive()
