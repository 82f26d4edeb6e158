"""COMMAND, COMMAND INFO, COMMAND DOCS and COMMAND GETKEYSANDFLAGS answer as redis-server 7.0 for every
command both servers have: arity, flags (movablekeys included), first/last/step, ACL categories, tips, key
specifications with their flags and notes, subcommands, and the documentation (summary, complexity,
history, deprecation, and every argument with its type, token, flags and versions, in RESP3 so that maps
and sets are told apart). The command table is the one description of each command; this test is what
keeps it true to Redis."""
import pytest

from support import resp

# Deliberate differences, each with its reason.
KNOWN = {
    # Redis 7.2's WITHSCORE is accepted (arity -3 where 7.0 says 3).
    "zrank": {1}, "zrevrank": {1},
}
# Subcommands of Redis 7.2 that this server has and 7.0 does not.
NEWER = {b"client|setinfo", b"client|no-touch"}


def entries(port):
    conn = resp.Connection(port)
    try:
        return {e[0].decode(): e for e in conn.call("COMMAND")}
    finally:
        conn.close()


def comparable(entry, names=None):
    """The entry with its subcommands sorted, keeping those named in `names` (the ones both servers have;
    the missing ones belong to other issues)."""
    entry = list(entry)
    entry[9] = sorted((comparable(s) for s in entry[9] if s[0] not in NEWER and (names is None or s[0] in names)),
                      key=lambda s: s[0])
    return entry


def test_command_info_matches_redis(pair):
    nova, ref = pair
    ours, theirs = entries(nova.port), entries(ref.port)
    differences = []
    for name in sorted(set(ours) & set(theirs)):
        shared = {s[0] for s in ours[name][9]} & {s[0] for s in theirs[name][9]}
        a, b = comparable(ours[name], shared), comparable(theirs[name], shared)
        for field in range(10):
            if field in KNOWN.get(name, ()):
                continue
            if a[field] != b[field]:
                differences.append(f"{name} field {field}:\n  nova  {a[field]!r}\n  redis {b[field]!r}")
    assert not differences, f"{len(differences)} differences:\n" + "\n".join(differences[:25])


def docs(port):
    conn = resp.Connection(port)
    try:
        conn.call("HELLO", "3")
        return dict(conn.call("COMMAND", "DOCS")["map"])
    finally:
        conn.close()


def comparable_docs(entry, names):
    """The docs map's fields in order, with the subcommands narrowed to `names` and sorted."""
    fields = []
    for key, value in entry["map"]:
        if key == b"subcommands":
            value = sorted(((name, comparable_docs(sub, None)) for name, sub in value["map"]
                            if name not in NEWER and (names is None or name in names)), key=lambda s: s[0])
        fields.append((key, value))
    return fields


def test_command_docs_match_redis(pair):
    nova, ref = pair
    ours, theirs = docs(nova.port), docs(ref.port)
    assert len(ours) > 150
    differences = []
    for name in sorted(set(ours) & set(theirs)):
        def subcommands(entry):
            return {n for k, v in entry["map"] if k == b"subcommands" for n, _ in v["map"]}
        shared = subcommands(ours[name]) & subcommands(theirs[name])
        a, b = comparable_docs(ours[name], shared), comparable_docs(theirs[name], shared)
        if a != b:
            differences.append(f"{name.decode()}:\n  nova  {a!r}\n  redis {b!r}")
    assert not differences, f"{len(differences)} differences:\n" + "\n".join(d[:1500] for d in differences[:10])


CALLS = [
    ["SET", "k", "v"], ["SET", "k", "v", "GET"], ["SET", "k", "v", "get", "EX", "10"], ["GET", "k"],
    ["COPY", "a", "b"], ["RENAME", "a", "b"], ["LMOVE", "a", "b", "LEFT", "RIGHT"], ["SMOVE", "a", "b", "m"],
    ["ZUNIONSTORE", "d", "2", "a", "b"], ["ZINTERSTORE", "d", "1", "a", "WEIGHTS", "2"], ["ZRANGESTORE", "d", "s", "0", "1"],
    ["SINTERSTORE", "d", "a", "b"], ["MSET", "a", "1", "b", "2"], ["MSETNX", "a", "1"], ["DEL", "a", "b"],
    ["EXISTS", "a"], ["TYPE", "a"], ["TTL", "a"], ["EXPIRE", "a", "1"], ["BLPOP", "a", "b", "0"],
    ["BLMPOP", "0", "2", "a", "b", "LEFT"], ["LMPOP", "1", "a", "RIGHT", "COUNT", "2"], ["ZMPOP", "2", "a", "b", "MIN"],
    ["SINTERCARD", "2", "a", "b"], ["ZINTERCARD", "1", "a", "LIMIT", "1"], ["GETDEL", "a"], ["GETEX", "a"],
    ["INCR", "a"], ["HSET", "h", "f", "v"], ["OBJECT", "ENCODING", "a"], ["WATCH", "a", "b"], ["TOUCH", "a"],
    ["UNLINK", "a"], ["ZUNION", "2", "a", "b"], ["MOVE", "a", "1"], ["PEXPIRETIME", "a"],
]


@pytest.mark.parametrize("call", CALLS, ids=lambda c: " ".join(c))
def test_getkeysandflags_matches_redis(pair, call):
    nova, ref = pair
    a, b = resp.Connection(nova.port), resp.Connection(ref.port)
    try:
        ours = a.call("COMMAND", "GETKEYSANDFLAGS", *call)
        theirs = b.call("COMMAND", "GETKEYSANDFLAGS", *call)
    finally:
        a.close()
        b.close()
    assert ours == theirs
