"""Keyspace notifications compared with redis-server: the same random command stream (every collection
type, strings, renames, moves, copies, expiries, deletions) runs on both servers while a subscriber to
`__key*__:*` records every event; the two event sequences must be identical, message by message.
Replay a failure with DIFF_SEED=<seed>."""
import os
import random

import pytest

from support import resp
from support.command_streams import Generator

STRING_COMMANDS = [
    lambda rng: [b"SET", b"str", str(rng.randint(0, 9)).encode()] + rng.choice([[], [b"EX", b"100"], [b"NX"], [b"XX"], [b"GET"]]),
    lambda rng: [b"INCRBY", b"counter", b"2"],
    lambda rng: [b"INCRBYFLOAT", b"counter", b"1.5"],
    lambda rng: [b"APPEND", b"str", b"x"],
    lambda rng: [b"SETRANGE", b"str", b"1", b"ab"],
    lambda rng: [b"GETDEL", rng.choice([b"str", b"counter"])],
    lambda rng: [b"GETEX", b"str", rng.choice([b"EX", b"PERSIST"])] + ([b"50"] if rng.random() < 0.5 else []),
    lambda rng: [b"MSET", b"str", b"1", b"other", b"2"],
    lambda rng: [b"PERSIST", rng.choice([b"str", b"other", b"l0"])],
    lambda rng: [b"EXPIRE", rng.choice([b"str", b"other", b"h0"]), rng.choice([b"100", b"-1"])],
    lambda rng: [b"MOVE", rng.choice([b"str", b"other", b"s0"]), b"3"],
    lambda rng: [b"COPY", rng.choice([b"str", b"z0"]), b"copied", b"REPLACE"],
    lambda rng: [b"RENAMENX", rng.choice([b"other", b"l1"]), b"renamed"],
    lambda rng: [b"SETEX", b"other", b"100", b"v"],
    lambda rng: [b"DEL", b"renamed", b"copied", b"missing"],
]


def events(server, commands):
    """Runs `commands` on `server` and returns every keyspace event a subscriber saw, in order."""
    control = resp.Connection(server.port)
    assert control.call(b"FLUSHALL") == "OK"
    assert control.call(b"CONFIG", b"SET", b"notify-keyspace-events", b"KEAn") == "OK"
    listener = resp.Connection(server.port)
    listener.call(b"PSUBSCRIBE", b"__key*__:*")
    assert listener.call(b"SUBSCRIBE", b"end-of-stream")[0] == b"subscribe"
    try:
        for start in range(0, len(commands), 50):
            control.pipeline(commands[start:start + 50])
        control.call(b"DISCARD")  # the stream may end inside MULTI
        control.call(b"PUBLISH", b"end-of-stream", b"done")
        seen = []
        while True:
            message = listener.read()
            if message[0] == b"message":
                return seen
            seen.append(tuple(message[2:]))
    finally:
        control.call(b"CONFIG", b"SET", b"notify-keyspace-events", b"")
        control.close()
        listener.close()


def test_keyspace_events_match_redis(pair):
    nova, ref = pair
    seed = int(os.environ.get("DIFF_SEED", random.randrange(1 << 32)))
    rng = random.Random(seed)
    gen = Generator(rng)
    commands = []
    for _ in range(int(os.environ.get("DIFF_COMMANDS", "6000"))):
        commands.append(rng.choice(STRING_COMMANDS)(rng) if rng.random() < 0.15 else gen.command())
    got, want = events(nova, commands), events(ref, commands)
    assert len(want) > 1000
    for index, (a, b) in enumerate(zip(got, want)):
        assert a == b, f"seed={seed} event #{index}: nova {a!r} redis {b!r}; events before: {want[max(0, index - 6):index]!r}"
    assert len(got) == len(want), f"seed={seed}"
