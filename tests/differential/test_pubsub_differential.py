"""Pub/Sub and CLIENT TRACKING compared with redis-server: the same scripted session (three connections:
a RESP2 subscriber, a RESP3 client, a publisher/writer; channel and pattern subscriptions, subscribed-mode
errors, PUBSUB introspection, keyspace events as pushes, tracking with and without redirection, BCAST,
OPTIN, flushes) runs against both servers, and every frame each connection receives must be identical.
Client ids differ between servers, so they are written as {id:name} and mapped back. After each step every
connection is read up to the reply of a PING, which also checks that pushed frames are never overtaken by
a later reply."""
import itertools

from support import resp

SCRIPT = [
    ("a", "SUBSCRIBE ch1 ch2"),
    ("a", "PSUBSCRIBE news.* ch?"),
    ("c", "PUBLISH ch1 hello"),
    ("c", "PUBLISH news.tech item"),
    ("c", "PUBLISH nobody x"),
    ("a", "PING"),
    ("a", "PING hi"),
    ("a", "GET k"),
    ("a", "CLIENT ID"),
    ("a", "UNSUBSCRIBE ch1"),
    ("c", "PUBSUB NUMSUB ch1 ch2 ch3"),
    ("c", "PUBSUB NUMPAT"),
    ("c", "PUBSUB CHANNELS"),
    ("c", "PUBSUB CHANNELS ch*"),
    ("a", "PUNSUBSCRIBE news.*"),
    ("a", "PUNSUBSCRIBE"),
    ("a", "UNSUBSCRIBE"),
    ("a", "UNSUBSCRIBE"),
    ("a", "PUNSUBSCRIBE"),
    # Sharded pub/sub (one node owns every slot): counts of shard channels only, smessage frames.
    ("a", "SUNSUBSCRIBE"),
    ("a", "SSUBSCRIBE sh1 sh2"),
    ("a", "SSUBSCRIBE sh1"),
    ("a", "SUBSCRIBE ch9"),
    ("a", "GET k"),
    ("b", "SSUBSCRIBE sh2"),
    ("b", "SSUBSCRIBE {tag}x"),
    ("c", "SPUBLISH sh2 both"),
    ("c", "SPUBLISH sh1 one"),
    ("c", "SPUBLISH nobody x"),
    ("c", "PUBLISH sh1 not-sharded"),
    ("c", "PUBSUB SHARDCHANNELS {*"),  # one match each: Redis lists channels in hash-table order
    ("c", "PUBSUB SHARDCHANNELS sh1"),
    ("c", "PUBSUB SHARDNUMSUB sh1 sh2 {tag}x none"),
    ("c", "PUBSUB CHANNELS"),
    ("c", "COMMAND GETKEYS SSUBSCRIBE a b"),
    ("c", "COMMAND GETKEYS SPUBLISH a b"),
    ("a", "SUNSUBSCRIBE sh1"),
    ("a", "UNSUBSCRIBE"),
    ("a", "PING"),
    ("a", "SUNSUBSCRIBE"),
    ("a", "SUNSUBSCRIBE"),
    ("b", "SUNSUBSCRIBE sh2"),
    ("b", "SUNSUBSCRIBE"),  # with several left, Redis would list them in hash-table order
    ("c", "PUBSUB SHARDNUMSUB sh1 sh2"),
    ("b", "SUBSCRIBE ch1"),
    ("b", "SET k v"),
    ("c", "PUBLISH ch1 m1"),
    ("b", "PING"),
    ("b", "GET k"),
    ("b", "UNSUBSCRIBE ch1"),
    ("c", "CONFIG SET notify-keyspace-events KEA"),
    ("b", "PSUBSCRIBE __keyevent@0__:*"),
    ("c", "SET z 1"),
    ("c", "LPUSH l a b"),
    ("c", "DEL z l nothing"),
    ("b", "PUNSUBSCRIBE"),
    ("c", "CONFIG SET notify-keyspace-events \"\""),
    ("b", "CLIENT TRACKING ON"),
    ("b", "GET t1"),
    ("b", "MGET t2 t3"),
    ("c", "SET t1 x"),
    ("c", "MSET t2 y t3 z t4 w"),
    ("c", "SET t1 again"),
    ("b", "GET t1"),
    ("c", "FLUSHALL"),
    ("b", "CLIENT TRACKINGINFO"),
    ("b", "CLIENT GETREDIR"),
    ("b", "CLIENT TRACKING OFF"),
    ("b", "CLIENT TRACKING ON OPTIN"),
    ("b", "GET o1"),
    ("b", "CLIENT CACHING YES"),
    ("b", "GET o2"),
    ("c", "MSET o1 1 o2 2"),
    ("b", "CLIENT CACHING NO"),
    ("b", "CLIENT TRACKING OFF"),
    ("a", "SUBSCRIBE __redis__:invalidate"),
    ("c", "CLIENT TRACKING ON REDIRECT {id:a} BCAST PREFIX user: PREFIX acct:"),
    ("c", "CLIENT TRACKINGINFO"),
    ("c", "CLIENT GETREDIR"),
    ("b", "SET user:1 x"),
    ("b", "MSET user:3 x acct:1 y user:0 z other w"),  # one message per prefix, keys in byte order
    ("b", "SET other y"),
    ("b", "HSET acct:7 f v"),
    ("c", "SET user:2 own"),
    ("c", "FLUSHDB"),
    ("c", "CLIENT TRACKING ON BCAST PREFIX user:x"),
    ("c", "CLIENT TRACKING OFF"),
    ("b", "CLIENT TRACKING ON BCAST NOLOOP"),
    ("b", "SET mine 1"),
    ("b", "MSET mine 1 mine2 2"),
    ("c", "SET theirs 1"),
    ("c", "MSET theirs 1 b 2 a 3 b 4"),
    ("b", "RESET"),
    ("c", "SET theirs 2"),
]


BARRIERS = itertools.count()


def drain(conn):
    """Every frame that arrived before the reply to a PING sent now: a published message or an
    invalidation caused by an earlier command must come before it, as Redis guarantees."""
    # A token of its own, so that the reply to a scripted PING is never taken for the barrier (which
    # would leave the barrier's own reply to end the next drain early, before that step's pushes).
    token = b"barrier-%d" % next(BARRIERS)
    conn.send_raw(resp.encode(b"PING", token))
    frames = []
    while True:
        frame = conn.read()
        if frame in (token, [b"pong", token]) and not isinstance(frame, resp.Push):
            return frames
        frames.append(frame)


def run(server):
    names = ("a", "b", "c")
    conns = {name: resp.Connection(server.port) for name in names}
    conns["c"].call(b"FLUSHALL")
    conns["b"].call(b"HELLO", b"3")  # b speaks RESP3 throughout
    ids = {name: conns[name].call(b"CLIENT", b"ID") for name in names}
    back = {value: f"{{id:{name}}}" for name, value in ids.items()}
    transcript = []
    try:
        for name, command in SCRIPT:
            for other, value in ids.items():
                command = command.replace(f"{{id:{other}}}", str(value))
            words = [w.strip('"').encode() for w in command.split()]
            conns[name].send_raw(resp.encode(*words))
            # The sender first: once it has its reply, everything the command pushed elsewhere is queued.
            for receiver in [name] + [other for other in names if other != name]:
                for frame in drain(conns[receiver]):
                    if receiver == name and words[0] == b"CLIENT":  # replies that carry client ids
                        if isinstance(frame, int):
                            frame = back.get(frame, frame)
                        elif isinstance(frame, list):
                            frame = [back.get(x, x) if isinstance(x, int) else x for x in frame]
                    transcript.append((name, command.split()[0], receiver, repr(frame)))
    finally:
        for conn in conns.values():
            conn.close()
    return transcript


def test_pubsub_and_tracking_sessions_match_redis(pair):
    nova, ref = pair
    got, want = run(nova), run(ref)
    assert len(want) > 80
    for index, (a, b) in enumerate(zip(got, want)):
        assert a == b, f"frame #{index}: nova {a!r} redis {b!r}; before: {want[max(0, index - 4):index]!r}"
    assert len(got) == len(want)
