"""Lazy freeing as Redis 7.0 does it (issue 16): UNLINK, FLUSHALL/FLUSHDB ASYNC and `lazyfree-lazy-*`
free big values on another thread, counted in INFO `lazyfreed_objects`, and `used_memory` comes back to
where it started right after the command."""
import re
import time

from support import resp


def info_number(conn, section, field):
    return int(re.search(rb"\r\n" + field.encode() + rb":(\d+)", conn.call("INFO", section)).group(1))


def fill_set(conn, key, members):
    conn.pipeline([["SADD", key] + [f"member-{j}" for j in range(i, min(i + 1000, members))]
                   for i in range(0, members, 1000)])


def lazyfree_session(port):
    conn = resp.Connection(port)
    conn.call("FLUSHALL", "SYNC")
    conn.call("CONFIG", "RESETSTAT")
    fill_set(conn, "big", 5000)
    conn.call("SADD", "small", "a", "b")
    conn.call("RPUSH", "list", *[str(i) for i in range(100)])
    outcome = [conn.call("UNLINK", "big", "small", "missing"), conn.call("DEL", "list")]
    time.sleep(0.2)
    outcome.append(info_number(conn, "memory", "lazyfreed_objects"))  # the big set only
    fill_set(conn, "big", 5000)
    conn.call("CONFIG", "SET", "lazyfree-lazy-user-del", "yes")
    outcome.append(conn.call("DEL", "big"))
    conn.call("CONFIG", "SET", "lazyfree-lazy-user-del", "no")
    time.sleep(0.2)
    outcome.append(info_number(conn, "memory", "lazyfreed_objects"))
    conn.pipeline([["SET", f"k{i}", "v"] for i in range(50)])
    conn.call("SELECT", "2")
    conn.pipeline([["SET", f"k{i}", "v"] for i in range(20)])
    outcome.append(conn.call("FLUSHDB", "ASYNC"))
    conn.call("SELECT", "0")
    outcome.append(conn.call("FLUSHALL", "ASYNC"))
    outcome.append(conn.call("FLUSHALL", "BOGUS"))
    time.sleep(0.2)
    outcome.append(info_number(conn, "memory", "lazyfreed_objects"))  # + the 70 keys
    outcome.append(info_number(conn, "memory", "lazyfree_pending_objects"))
    conn.call("CONFIG", "RESETSTAT")
    outcome.append(info_number(conn, "memory", "lazyfreed_objects"))
    conn.close()
    return outcome


def test_lazy_freeing_counts_as_redis(pair):
    nova, ref = pair
    ours, theirs = lazyfree_session(nova.port), lazyfree_session(ref.port)
    assert ours == theirs
    assert ours[2] == 1 and ours[4] == 2 and ours[8] == 72


def test_used_memory_falls_back_within_a_second_of_unlink(pair):
    nova, _ = pair
    conn = resp.Connection(nova.port)
    conn.call("FLUSHALL", "SYNC")
    conn.call("MEMORY", "PURGE")
    time.sleep(0.3)
    start = info_number(conn, "memory", "used_memory")
    fill_set(conn, "big", 200_000)
    grown = info_number(conn, "memory", "used_memory")
    assert grown - start > 8_000_000
    began = time.time()
    assert conn.call("UNLINK", "big") == 1
    unlink_seconds = time.time() - began
    deadline = time.time() + 1.0
    while time.time() < deadline:
        now = info_number(conn, "memory", "used_memory")
        if now - start < (grown - start) / 10:
            break
        time.sleep(0.05)
    assert now - start < (grown - start) / 10, (start, grown, now)
    assert unlink_seconds < 0.05
    conn.close()
