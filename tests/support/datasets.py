"""Data sets of every type and encoding for the persistence tests, and a type-aware capture of a server's
whole keyspace, so that two servers (or one server before and after a restart) can be compared key by key
without DEBUG or DUMP."""
import os
import random

import redis


def _client(port, db, password=None):
    return redis.Redis(port=port, db=db, password=password)


def write_dataset(port, count=2000, dbs=(0, 1, 5), password=None):
    """Writes `count` keys per database: strings of every encoding, and hashes, lists, sets and sorted sets
    in both their compact (listpack / intset) and their large encodings; a third of the keys with a TTL."""
    for db in dbs:
        c = _client(port, db, password)
        pipe = c.pipeline(transaction=False)
        for i in range(count):
            rng = random.Random(i * 31 + db)
            key = f"k:{db}:{i}".encode()
            kind, variant = i % 10, i % 40
            if kind == 0:
                pipe.set(key, str(i * 7919 - 50000))
            elif kind == 1:
                pipe.set(key, str(10 ** 15 + i))
            elif kind == 2:
                pipe.set(key, b"short-" + str(i).encode())
            elif kind == 3:
                pipe.set(key, (b"compressible " * 20) + str(i).encode())
            elif kind == 4:
                pipe.set(key, os.urandom(64))
            elif kind == 5:
                size = 200 if variant == 5 else rng.randint(1, 5)
                fields = {f"f{n}": (str(n * 3 - 7) if n % 2 else f"value-{n}") for n in range(size)}
                if variant == 15:
                    fields["long"] = "v" * 100  # one long value: hashtable encoding
                pipe.hset(key, mapping=fields)
            elif kind == 6:
                size = 300 if variant == 6 else rng.randint(1, 8)
                pipe.rpush(key, *[(n * 1000 - 3 if n % 3 == 0 else f"item-{n}") for n in range(size)])
            elif kind == 7:
                if variant == 7:
                    members = range(-300, 300)  # integers past set-max-intset-entries
                elif variant == 17:
                    members = range(0, 50 * 7, 7)
                elif variant == 27:
                    members = [f"member-{n}" for n in range(200)]
                else:
                    members = [rng.choice([str(rng.randint(-99, 99)), f"m{rng.randint(0, 9)}"])
                               for _ in range(rng.randint(1, 6))]
                pipe.sadd(key, *members)
            elif kind == 8:
                size = 300 if variant == 8 else rng.randint(1, 6)
                scores = [rng.choice([rng.randint(-50, 50), rng.uniform(-1e6, 1e6), float("inf"), float("-inf"),
                                      0.1, 1e-300]) for _ in range(size)]
                pipe.zadd(key, {f"z{n}": score for n, score in enumerate(scores)})
            else:
                pipe.set(key, str(i))
            if i % 3 == 0:
                pipe.expire(key, 5000 + i)
        pipe.execute()
        c.close()


def capture(port, dbs=(0, 1, 5), password=None):
    """Every key of `dbs` as {(db, key): (type, encoding, value, has_ttl)}; unordered values are sorted."""
    state = {}
    for db in dbs:
        c = _client(port, db, password)
        keys = sorted(c.scan_iter(count=1000))
        pipe = c.pipeline(transaction=False)
        for key in keys:
            pipe.type(key)
            pipe.object("encoding", key)
            pipe.pttl(key)
        meta = pipe.execute()
        pipe = c.pipeline(transaction=False)
        for n, key in enumerate(keys):
            kind = meta[3 * n]
            if kind == b"string":
                pipe.get(key)
            elif kind == b"hash":
                pipe.hgetall(key)
            elif kind == b"list":
                pipe.lrange(key, 0, -1)
            elif kind == b"set":
                pipe.smembers(key)
            elif kind == b"zset":
                pipe.zrange(key, 0, -1, withscores=True)
            elif kind == b"stream":
                pipe.execute_command("XINFO", "STREAM", key, "FULL", "COUNT", "0")
            else:
                raise AssertionError(f"unexpected type {kind!r} of {key!r}")
        values = pipe.execute()
        for n, key in enumerate(keys):
            value = values[n]
            if meta[3 * n] == b"stream":
                value = stream_state(value)
            elif isinstance(value, dict):
                value = sorted(value.items())
            elif isinstance(value, set):
                value = sorted(value)
            state[(db, key)] = (meta[3 * n], meta[3 * n + 1], value, meta[3 * n + 2] > 0)
        c.close()
    return state


def _frozen(value):
    if isinstance(value, dict):
        value = [x for pair in value.items() for x in pair]
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    return value


def stream_state(info):
    """XINFO STREAM FULL as nested tuples, without `radix-tree-nodes` (the shape of Redis's radix tree, not of
    the data) and the consumers' `seen-time` (a replayed AOF recreates consumers at replay time, in Redis as
    here)."""
    info = _frozen(info)
    fields = dict(zip(info[0::2], info[1::2]))
    fields.pop(b"radix-tree-nodes", None)
    groups = []
    for group in fields.get(b"groups", ()):
        group = dict(zip(group[0::2], group[1::2]))
        group[b"consumers"] = tuple(
            tuple(x for pair in dict(zip(c[0::2], c[1::2])).items() if pair[0] != b"seen-time" for x in pair)
            for c in group[b"consumers"])
        groups.append(tuple(sorted(group.items())))
    fields[b"groups"] = tuple(groups)
    return tuple(sorted(fields.items()))


def as_replayed(state):
    """A capture as an append-only file replay can bring it back, which Redis 7.0's logging does not do
    entirely: without the stream consumers that own no pending entry (their creation is logged only through
    the XCLAIMs of their deliveries, or for NOACK reads), without the groups' `entries-read` and `lag`
    (deliveries are logged as XCLAIM … LASTID, which moves the last ID but not the read counter), and
    without the pending entries' delivery time and count (a read of the consumer's own history,
    XREADGROUP with an ID other than `>`, delivers again — time and count change — and is not logged)."""
    def unlogged_deliveries(pending):
        return tuple(entry[:-2] for entry in pending)

    result = {}
    for key, (kind, encoding, value, ttl) in state.items():
        if kind == b"stream":
            fields = dict(value)
            groups = []
            for group in fields[b"groups"]:
                group = dict(group)
                consumers = []
                for consumer in group[b"consumers"]:
                    consumer = dict(zip(consumer[0::2], consumer[1::2]))
                    if consumer[b"pel-count"]:
                        consumer[b"pending"] = unlogged_deliveries(consumer[b"pending"])
                        consumers.append(tuple(sorted(consumer.items())))
                group[b"consumers"] = tuple(consumers)
                group[b"pending"] = unlogged_deliveries(group[b"pending"])
                group.pop(b"entries-read", None)
                group.pop(b"lag", None)
                groups.append(tuple(sorted(group.items())))
            fields[b"groups"] = tuple(groups)
            value = tuple(sorted(fields.items()))
        result[key] = (kind, encoding, value, ttl)
    return result


def random_dataset(client, count=2000, dbs=(0, 1, 5)):
    """Writes a data set of every type through `client`'s server and returns its capture."""
    kwargs = client.connection_pool.connection_kwargs
    write_dataset(kwargs["port"], count, dbs, kwargs.get("password"))
    return capture(kwargs["port"], dbs, kwargs.get("password"))


def check_dataset(port, expected, password=None):
    """Asserts that the server on `port` holds exactly `expected` (a capture) in the same databases."""
    dbs = tuple(sorted({db for db, _ in expected}))
    actual = capture(port, dbs, password)
    missing = [k for k in expected if k not in actual]
    extra = [k for k in actual if k not in expected]
    assert not missing and not extra, f"missing {missing[:5]} extra {extra[:5]}"
    different = [(k, expected[k], actual[k]) for k in expected if expected[k] != actual[k]]
    assert not different, f"{len(different)} keys differ, e.g. {different[:3]}"
