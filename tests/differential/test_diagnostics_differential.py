"""Diagnostics compared with redis-server 7.0 (issue 16): DEBUG (refused by default; DIGEST and
DIGEST-VALUE equal for the same data, RELOAD, POPULATE, the error replies), LATENCY (monitor events,
GRAPH, HISTORY, RESET, DOCTOR, HISTOGRAM, INFO latencystats), MEMORY (USAGE, STATS fields, DOCTOR,
errors), WAIT, LOLWUT and sharded pub/sub introspection in CLIENT LIST and INFO. Both servers run with
`enable-debug-command yes`."""
import re
import socket
import time

import pytest

from support import resp, servers


@pytest.fixture(scope="module")
def debug_pair():
    nova = servers.start_nova("--save", "", "--appendonly", "no", "--enable-debug-command", "yes")
    ref = servers.start_redis("--enable-debug-command", "yes")
    yield nova, ref
    nova.cleanup()
    ref.cleanup()


def calls(port, commands, protocol=2):
    conn = resp.Connection(port)
    try:
        if protocol == 3:
            conn.call("HELLO", "3")
        return [conn.call(*c) for c in commands]
    finally:
        conn.close()


def both(pair, commands, protocol=2):
    nova, ref = pair
    return calls(nova.port, commands, protocol), calls(ref.port, commands, protocol)


def test_debug_is_refused_unless_enabled(pair):
    ours, theirs = both(pair, [["DEBUG", "DIGEST"], ["DEBUG", "SLEEP", "0"], ["DEBUG", "HELP"]])
    assert ours == theirs
    assert all(isinstance(r, resp.Error) and "enable-debug-command" in str(r) for r in ours)


DATASET = [
    ["FLUSHALL"],
    ["SET", "s", "hello"], ["SET", "n", "12345"], ["SET", "neg", "-7"], ["SET", "e", "x", "EX", "1000"],
    ["RPUSH", "l", "a", "b", "c", "1"], ["SADD", "ints", "1", "2", "3"], ["SADD", "st", "x", "y", "z"],
    ["ZADD", "z", "0.1", "a", "1.5", "b", "3", "c", "-inf", "d"], ["HSET", "h", "f1", "v1", "f2", "v2"],
    ["ZADD", "bigz"] + [x for i in range(200) for x in (str(i / 7), f"m{i}")],
    ["HSET", "bigh"] + [x for i in range(600) for x in (f"f{i}", f"v{i}")],
    ["SELECT", "3"], ["SET", "s", "other db"], ["SELECT", "0"],
]


def test_dataset_digests_match_redis(debug_pair):
    keys = ["s", "n", "neg", "e", "l", "ints", "st", "z", "h", "bigz", "bigh", "missing"]
    script = [["DEBUG", "DIGEST"]] + DATASET + [
        ["DEBUG", "DIGEST"], ["DEBUG", "DIGEST-VALUE"] + keys, ["DEBUG", "DIGEST-VALUE"],
        ["DEBUG", "RELOAD"], ["DEBUG", "DIGEST"], ["DBSIZE"],
        ["DEBUG", "RELOAD", "NOSAVE", "NOFLUSH", "MERGE"], ["DEBUG", "DIGEST"],
        ["DEBUG", "RELOAD", "BOGUS"], ["DEL", "s"], ["DEBUG", "DIGEST"],
    ]
    ours, theirs = both(debug_pair, script)
    # NOFLUSH without MERGE over keys that exist: redis-server panics ("Duplicated key found in RDB
    # file"); here the reload is refused and the data stays.
    nova = debug_pair[0]
    assert calls(nova.port, [["DEBUG", "RELOAD", "NOSAVE", "NOFLUSH"], ["DEBUG", "DIGEST"]]) == [
        resp.Error("ERR Error trying to load the RDB dump, check server logs."), ours[-1]]
    assert ours == theirs
    assert ours[0] == "0" * 40
    digest = ours[len(DATASET) + 1]
    assert re.fullmatch("[0-9a-f]{40}", digest) and digest != "0" * 40
    assert ours[len(DATASET) + 5] == digest  # unchanged by a save and reload


def test_debug_subcommands_and_errors_match_redis(debug_pair):
    script = [
        ["FLUSHALL"], ["DEBUG", "POPULATE", "10"], ["DEBUG", "POPULATE", "5", "pfx", "3"],
        ["DEBUG", "POPULATE", "3", "pad", "20"], ["DEBUG", "POPULATE", "4"], ["DBSIZE"], ["DEBUG", "DIGEST"],
        ["GET", "key:9"], ["GET", "pfx:1"], ["STRLEN", "pad:2"],
        ["DEBUG", "POPULATE", "-1"], ["DEBUG", "POPULATE", "x"], ["DEBUG", "POPULATE", "1", "p", "-2"],
        ["DEBUG", "NOSUCH"], ["DEBUG", "OBJECT"], ["DEBUG", "OBJECT", "missing"],
        ["RPUSH", "list", "a"], ["DEBUG", "LISTPACK", "list"], ["DEBUG", "LISTPACK", "key:1"],
        ["HSET", "small", "f", "v"], ["DEBUG", "LISTPACK", "small"], ["DEBUG", "LISTPACK", "missing"],
        ["DEBUG", "QUICKLIST-PACKED-THRESHOLD", "0"], ["DEBUG", "QUICKLIST-PACKED-THRESHOLD", "10k"],
        ["DEBUG", "QUICKLIST-PACKED-THRESHOLD", "4gb"], ["DEBUG", "QUICKLIST-PACKED-THRESHOLD", "x"],
        ["DEBUG", "SET-ACTIVE-EXPIRE", "0"], ["DEBUG", "SET-ACTIVE-EXPIRE", "x"], ["DEBUG", "SET-ACTIVE-EXPIRE", "1"],
        ["DEBUG", "CHANGE-REPL-ID"], ["DEBUG", "SLEEP", "0"], ["DEBUG", "SLEEP", "0.01"],
        ["DEBUG", "ERROR", "CUSTOM this is an error"], ["DEBUG", "LOG", "hello from the test"],
        ["DEBUG", "STRINGMATCH-LEN"],
    ]
    ours, theirs = both(debug_pair, script)
    assert ours == theirs
    assert ours[5] == 18
    # redis-server's fuzz run takes longer than the test allows; here a million matches take ~1 s.
    assert calls(debug_pair[0].port, [["DEBUG", "STRINGMATCH-TEST"]]) == ["Apparently Redis did not crash: test passed"]


def test_debug_object_fields(debug_pair):
    nova, ref = debug_pair
    script = [["FLUSHALL"], ["SET", "s", "hello"], ["SET", "n", "12"], ["HSET", "h", "f", "v"], ["DEBUG", "OBJECT", "s"],
              ["DEBUG", "OBJECT", "n"], ["DEBUG", "OBJECT", "h"]]
    ours, theirs = both(debug_pair, script)
    field = re.compile(r"Value at:0x[0-9a-f]+ refcount:(\d+) encoding:(\S+) serializedlength:\d+ lru:\d+ lru_seconds_idle:\d+")
    for a, b in zip(ours[4:], theirs[4:]):
        assert field.fullmatch(a).groups() == field.fullmatch(b).groups(), (a, b)
    # The change of replication id shows in INFO.
    conn = resp.Connection(nova.port)
    before = conn.call("INFO", "replication")
    conn.call("DEBUG", "CHANGE-REPL-ID")
    assert conn.call("INFO", "replication") != before
    conn.close()


def test_debug_set_active_expire_stops_background_expiry(debug_pair):
    for server in debug_pair:
        conn = resp.Connection(server.port)
        conn.call("FLUSHALL")
        conn.call("DEBUG", "SET-ACTIVE-EXPIRE", "0")
        conn.call("SET", "gone", "x", "PX", "10")
        time.sleep(0.4)
        assert conn.call("DBSIZE") == 1, server.name
        conn.call("DEBUG", "SET-ACTIVE-EXPIRE", "1")
        deadline = time.time() + 5
        while conn.call("DBSIZE") != 0 and time.time() < deadline:
            time.sleep(0.05)
        assert conn.call("DBSIZE") == 0, server.name
        conn.close()


def normalized(text):
    return re.sub(r"\d+", "N", text.decode() if isinstance(text, bytes) else text)


def latency_session(port):
    conn = resp.Connection(port)
    out = {}
    try:
        conn.call("LATENCY", "RESET")
        conn.call("CONFIG", "SET", "latency-monitor-threshold", "0")
        out["disabled"] = conn.call("LATENCY", "DOCTOR")
        conn.call("CONFIG", "SET", "latency-monitor-threshold", "100")
        out["no-spike"] = conn.call("LATENCY", "DOCTOR")
        out["empty"] = [conn.call("LATENCY", "LATEST"), conn.call("LATENCY", "HISTORY", "command"),
                        conn.call("LATENCY", "GRAPH", "command")]
        conn.call("DEBUG", "SLEEP", "0.3")
        time.sleep(1.1)
        conn.call("DEBUG", "SLEEP", "0.15")
        latest = conn.call("LATENCY", "LATEST")
        out["latest"] = [(e[0], 150 <= e[2] < 200, 300 <= e[3] < 400) for e in latest]
        history = conn.call("LATENCY", "HISTORY", "command")
        out["history"] = [(300 <= h[1] < 400) if i == 0 else (150 <= h[1] < 200) for i, h in enumerate(history)]
        out["history-times"] = history[1][0] > history[0][0]
        out["graph"] = normalized(conn.call("LATENCY", "GRAPH", "command"))
        out["doctor"] = normalized(conn.call("LATENCY", "DOCTOR")).splitlines()[:3]
        out["errors"] = [conn.call("LATENCY", "GRAPH", "nosuch"), conn.call("LATENCY", "HISTORY"),
                         conn.call("LATENCY", "HISTORY", "nosuch"), conn.call("LATENCY", "NOSUCH"),
                         conn.call("LATENCY", "LATEST", "x"), conn.call("LATENCY", "HELP")]
        out["reset"] = [conn.call("LATENCY", "RESET", "nosuch", "command"), conn.call("LATENCY", "RESET"),
                        conn.call("LATENCY", "LATEST")]
        conn.call("CONFIG", "SET", "latency-monitor-threshold", "0")
    finally:
        conn.close()
    return out


def test_latency_monitor_matches_redis(debug_pair):
    nova, ref = debug_pair
    ours, theirs = latency_session(nova.port), latency_session(ref.port)
    assert ours == theirs
    assert ours["latest"] == [(b"command", True, True)]
    assert ours["history"] == [True, True]


def histogram_session(port):
    conn = resp.Connection(port)
    try:
        conn.call("CONFIG", "RESETSTAT")
        conn.call("CONFIG", "SET", "latency-tracking-info-percentiles", "50 99 99.9 100")
        for i in range(5):
            conn.call("SET", f"k{i}", "v")
        for i in range(3):
            conn.call("GET", f"k{i}")
        conn.call("CLIENT", "ID")
        pairs = lambda flat: list(zip(flat[::2], flat[1::2]))  # a RESP2 map is a flat array
        histograms = pairs(conn.call("LATENCY", "HISTOGRAM", "set", "GET", "client|id", "nosuch", "set"))
        info = conn.call("INFO", "latencystats").decode()
        everything = pairs(conn.call("LATENCY", "HISTOGRAM"))
        conn.call("CONFIG", "SET", "latency-tracking", "no")
        conn.call("GET", "k1")
        after = pairs(conn.call("LATENCY", "HISTOGRAM", "get"))
        conn.call("CONFIG", "SET", "latency-tracking", "yes")
        conn.call("CONFIG", "SET", "latency-tracking-info-percentiles", "50 99 99.9")
        return histograms, info, everything, after
    finally:
        conn.close()


def test_latency_histograms_match_redis(debug_pair):
    nova, ref = debug_pair
    for histograms, info, everything, after in (histogram_session(nova.port), histogram_session(ref.port)):
        assert [name for name, _ in histograms] == [b"set", b"get", b"client|id", b"set"]  # repeats answered
        for name, body in histograms:
            fields = dict(zip(body[::2], body[1::2]))
            buckets = fields[b"histogram_usec"]
            counts = buckets[1::2]
            assert counts == sorted(counts) and counts[-1] == fields[b"calls"]
            bounds = buckets[::2]  # microseconds reached by each power of two nanoseconds from 1,024
            assert bounds == sorted(set(bounds)) and set(bounds) <= {1, 2, 4, 8, 16, 33, 66, 132, 264, 528, 1057, 2114, 4228}
        assert {name: dict(zip(b[::2], b[1::2]))[b"calls"] for name, b in histograms} == {b"set": 5, b"get": 3, b"client|id": 1}
        lines = [line for line in info.splitlines() if line.startswith("latency_percentiles_usec_")]
        names = {line.split(":", 1)[0][len("latency_percentiles_usec_"):] for line in lines}
        assert {"set", "get", "client|id", "config|set"} <= names
        for line in lines:
            assert re.fullmatch(r"latency_percentiles_usec_[a-z|-]+:p50=\d+\.\d{3},p99=\d+\.\d{3},p99\.9=\d+\.\d{3},p100=\d+\.\d{3}", line), line
        assert b"latency|histogram" in [name for name, _ in everything]
        assert dict(zip(after[0][1][::2], after[0][1][1::2]))[b"calls"] == 3  # not counted while off


def test_memory_commands_match_redis(debug_pair):
    script = [
        ["FLUSHALL"], ["SET", "k", "v"], ["MEMORY", "USAGE", "missing"], ["MEMORY", "USAGE", "k", "SAMPLES"],
        ["MEMORY", "USAGE", "k", "SAMPLES", "-1"], ["MEMORY", "USAGE", "k", "SAMPLES", "x"],
        ["MEMORY", "USAGE", "k", "FOO", "1"], ["MEMORY", "USAGE"], ["MEMORY", "DOCTOR"], ["MEMORY", "PURGE"],
        ["MEMORY", "HELP"], ["MEMORY", "NOSUCH"], ["MEMORY", "STATS", "x"],
    ]
    ours, theirs = both(debug_pair, script)
    assert ours == theirs
    for port in (server.port for server in debug_pair):
        stats = calls(port, [["MEMORY", "STATS"]], protocol=3)[0]["map"]
        names = [name for name, _ in stats]
        if port == debug_pair[0].port:
            our_names = names
        else:
            assert our_names == names
        usage = calls(port, [["MEMORY", "USAGE", "k"], ["MEMORY", "USAGE", "k", "SAMPLES", "0"]])
        assert usage[0] == usage[1] and 16 <= usage[0] <= 200
        report = calls(port, [["MEMORY", "MALLOC-STATS"]])[0]
        assert len(report) > 100


def test_memory_usage_tracks_what_keys_cost(debug_pair):
    """The sum of MEMORY USAGE over many keys is close to how much used_memory grew to hold them."""
    nova, _ = debug_pair
    conn = resp.Connection(nova.port)
    conn.call("FLUSHALL")
    conn.call("MEMORY", "PURGE")

    def used():
        return int(re.search(rb"used_memory:(\d+)", conn.call("INFO", "memory")).group(1))

    before = used()
    commands = []
    for i in range(300):
        commands.append(["HSET", f"h{i}"] + [x for j in range(100) for x in (f"field{j}", f"value-{i}-{j}")])
        commands.append(["RPUSH", f"l{i}"] + [f"item-{j}" for j in range(100)])
        commands.append(["SET", f"s{i}", "x" * 500])
    conn.pipeline(commands)
    grown = used() - before
    total = sum(conn.pipeline([["MEMORY", "USAGE", name] for i in range(300) for name in (f"h{i}", f"l{i}", f"s{i}")]))
    conn.close()
    assert 0.6 < total / grown < 1.5, (total, grown)


def wait_session(port):
    conn = resp.Connection(port)
    try:
        quick = [conn.call("WAIT", "0", "0"), conn.call("WAIT", "-1", "100"), conn.call("WAIT", "1", "-1"),
                 conn.call("WAIT", "1", "x"), conn.call("WAIT", "x", "1"), conn.call("WAIT", "1"),
                 conn.call("MULTI"), conn.call("WAIT", "1", "0"), conn.call("EXEC")]
        start = time.time()
        timed = conn.call("WAIT", "2", "300")
        elapsed = time.time() - start
        # CLIENT UNBLOCK ends a WAIT with its timeout reply, or with the UNBLOCKED error.
        waiter = socket.create_connection(("127.0.0.1", port))
        waiter.sendall(resp.encode("CLIENT", "ID"))
        waiter_id = int(waiter.recv(100)[1:-2])
        waiter.sendall(resp.encode("WAIT", "1", "0"))
        time.sleep(0.1)
        unblocked = conn.call("CLIENT", "UNBLOCK", str(waiter_id))
        waiter.settimeout(3)
        first = waiter.recv(100)
        waiter.sendall(resp.encode("WAIT", "1", "0"))
        time.sleep(0.1)
        conn.call("CLIENT", "UNBLOCK", str(waiter_id), "ERROR")
        second = waiter.recv(100)
        waiter.close()
        return quick, timed, 0.25 < elapsed < 2, unblocked, first, second
    finally:
        conn.close()


def test_wait_matches_redis(debug_pair):
    nova, ref = debug_pair
    ours, theirs = wait_session(nova.port), wait_session(ref.port)
    assert ours == theirs
    assert ours[1] == 0 and ours[2] is True
    assert ours[4] == b":0\r\n" and ours[5].startswith(b"-UNBLOCKED")


def test_lolwut_matches_redis(debug_pair):
    script = [["LOLWUT"], ["LOLWUT", "VERSION", "9"], ["LOLWUT", "VERSION", "x"], ["LOLWUT", "whatever"],
              ["LOLWUT", "VERSION", "5", "x"], ["LOLWUT", "VERSION", "5", "1", "1", "1"]]
    ours, theirs = both(debug_pair, script)
    assert ours == theirs
    art = [calls(server.port, [["LOLWUT", "VERSION", "5"]])[0].decode() for server in debug_pair]
    for text in art:
        lines = text.split("\n")
        assert lines[-2] == "Georg Nees - schotter, plotter on paper, 1968. Redis ver. 7.0.15"
        assert all(0x2800 <= ord(ch) <= 0x28FF for line in lines[:-3] for ch in line)
    assert [len(t.split("\n")) for t in art][0] == [len(t.split("\n")) for t in art][1]
    assert [len(t.split("\n")[0]) for t in art][0] == [len(t.split("\n")[0]) for t in art][1]
    # Version 6: a skyline of ANSI-coloured cells (random, so compared in shape), then Redis's caption.
    skylines = [calls(server.port, [["LOLWUT", "VERSION", "6", "30", "12"]])[0].decode() for server in debug_pair]
    cell = re.compile(r"(\x1b\[0;(?:30;40|90;100|37;47|97;107)m \x1b\[0m){30}")
    for text in skylines:
        lines = text.split("\n")
        assert len(lines) == 12 + 3 and lines[-1] == ""
        assert lines[-3] == "Dedicated to the 8 bit game developers of past and present."
        assert lines[-2] == "Original 8 bit image from Plaguemon by hikikomori. Redis ver. 7.0.15"
        assert all(cell.fullmatch(line) for line in lines[:12]), lines[:12]
        assert set(lines[0].split("\x1b[0m")) <= {"\x1b[0;97;107m ", "\x1b[0;37;47m ", ""}  # sky, or a tall grey building


def test_shard_subscriptions_in_client_list_and_info(debug_pair):
    for server in debug_pair:
        subscriber = resp.Connection(server.port)
        subscriber.call("SSUBSCRIBE", "a", "b")
        conn = resp.Connection(server.port)
        lines = conn.call("CLIENT", "LIST").decode().splitlines()
        assert any(" ssub=2 " in line and " flags=P " in line for line in lines), lines
        assert b"pubsubshard_channels:2" in conn.call("INFO", "stats")
        subscriber.close()
        conn.close()
