"""Server-assisted client-side caching (CLIENT TRACKING): RESP3 invalidation pushes, RESP2 redirection to a
redis-py subscriber of __redis__:invalidate, BCAST prefixes, OPTIN/OPTOUT with CLIENT CACHING, NOLOOP,
invalidation on write, expiry, eviction and flush, and Redis's error texts."""
import time

import pytest
import redis

from support import resp


def resp3(port):
    conn = resp.Connection(port)
    assert isinstance(conn.call(b"HELLO", b"3"), dict)
    return conn


def pushes(conn, timeout=0.5):
    """Push frames that arrive within `timeout`."""
    found = []
    conn.sock.settimeout(timeout)
    try:
        while True:
            frame = conn.read()
            assert isinstance(frame, resp.Push), frame
            found.append(list(frame))
    except (TimeoutError, OSError):
        pass
    finally:
        conn.sock.settimeout(10)
    return found


def test_default_mode_invalidates_keys_the_client_read(r, port):
    reader = resp3(port)
    try:
        assert reader.call(b"CLIENT", b"TRACKING", b"ON") == "OK"
        assert reader.call(b"GET", b"product:1") is None
        assert reader.call(b"MGET", b"product:2", b"product:3") == [None, None]
        assert reader.call(b"HGET", b"product:4", b"name") is None
        assert r.info("clients")["tracking_clients"] == 1
        r.set("product:1", "x")
        r.mset({"product:2": 1, "product:3": 2, "unread": 3})
        r.hset("product:4", "name", "n")
        assert pushes(reader) == [[b"invalidate", [b"product:1"]], [b"invalidate", [b"product:2"]],
                                  [b"invalidate", [b"product:3"]], [b"invalidate", [b"product:4"]]]
        r.set("product:1", "again")  # not read since: nobody is told
        assert pushes(reader, 0.2) == []
    finally:
        reader.close()


def test_expiry_eviction_and_flush_invalidate(r, port):
    reader = resp3(port)
    try:
        reader.call(b"CLIENT", b"TRACKING", b"ON")
        r.set("session", "x", px=100)
        assert reader.call(b"GET", b"session") == b"x"
        # Never read again: the active expiry cycle removes it and the reader is told.
        assert pushes(reader, 3) == [[b"invalidate", [b"session"]]]
        r.flushall()
        assert pushes(reader) == [[b"invalidate", None]]
    finally:
        reader.close()


def test_resp2_redirect_to_a_redis_py_subscriber(r, port):
    listener = redis.Redis(port=port).pubsub()
    listener.subscribe("__redis__:invalidate")
    assert listener.get_message(timeout=2)["type"] == "subscribe"
    listener_id = None
    for line in r.execute_command("CLIENT", "LIST").decode().splitlines():
        if "sub=1" in line:
            listener_id = int(line.split()[0][3:])
    tracker = resp.Connection(port)
    try:
        assert tracker.call(b"CLIENT", b"TRACKING", b"ON", b"REDIRECT", str(listener_id).encode(),
                            b"BCAST", b"PREFIX", b"user:", b"PREFIX", b"acct:") == "OK"
        assert tracker.call(b"CLIENT", b"GETREDIR") == listener_id
        assert tracker.call(b"CLIENT", b"TRACKINGINFO") == [
            b"flags", [b"on", b"bcast"], b"redirect", listener_id, b"prefixes", [b"acct:", b"user:"]]
        r.set("user:1", "a")
        r.set("other", "b")
        r.set("acct:9", 1)
        messages = []
        deadline = time.time() + 3
        while len(messages) < 2 and time.time() < deadline:
            message = listener.get_message(timeout=0.2)
            if message:
                messages.append((message["channel"], message["data"]))
        assert messages == [(b"__redis__:invalidate", [b"user:1"]), (b"__redis__:invalidate", [b"acct:9"])]
        r.flushdb()
        message = listener.get_message(timeout=2)
        assert message["channel"] == b"__redis__:invalidate" and message["data"] is None
    finally:
        tracker.close()
        listener.close()


def test_optin_optout_and_noloop(r, port):
    conn = resp3(port)
    try:
        conn.call(b"CLIENT", b"TRACKING", b"ON", b"OPTIN", b"NOLOOP")
        conn.call(b"GET", b"not-cached")
        assert conn.call(b"CLIENT", b"CACHING", b"YES") == "OK"
        assert conn.call(b"CLIENT", b"TRACKINGINFO")["map"][0] == (b"flags", ("set", [b"on", b"optin", b"caching-yes", b"noloop"]))
        conn.call(b"GET", b"cached")
        conn.call(b"SET", b"cached-own", b"1")
        r.set("not-cached", 1)
        r.set("cached", 1)
        assert pushes(conn) == [[b"invalidate", [b"cached"]]]
        conn.call(b"GET", b"own")
        assert conn.call(b"CLIENT", b"CACHING", b"YES") == "OK"
        conn.call(b"GET", b"own")
        conn.call(b"SET", b"own", b"mine")  # NOLOOP: its own write is not announced to it
        assert pushes(conn, 0.2) == []
        assert conn.call(b"CLIENT", b"TRACKING", b"OFF") == "OK"
        assert conn.call(b"CLIENT", b"TRACKING", b"ON", b"OPTOUT") == "OK"
        assert conn.call(b"CLIENT", b"CACHING", b"NO") == "OK"
        conn.call(b"GET", b"skipped")
        conn.call(b"GET", b"kept")
        r.set("skipped", 1)
        r.set("kept", 1)
        assert pushes(conn) == [[b"invalidate", [b"kept"]]]
    finally:
        conn.close()


def test_broken_redirect_is_reported_once(r, port):
    target = resp.Connection(port)
    target_id = target.call(b"CLIENT", b"ID")
    conn = resp3(port)
    try:
        conn.call(b"CLIENT", b"TRACKING", b"ON", b"REDIRECT", str(target_id).encode())
        conn.call(b"GET", b"k1")
        conn.call(b"GET", b"k2")
        target.close()
        time.sleep(0.2)
        r.set("k1", 1)
        r.set("k2", 1)
        assert pushes(conn) == [[b"tracking-redir-broken", target_id]]
        assert b"flags=tR" in r.execute_command("CLIENT", "LIST")
    finally:
        conn.close()


@pytest.mark.parametrize("arguments,error", [
    ([b"ON", b"PREFIX", b"x"], "ERR PREFIX option requires BCAST mode to be enabled"),
    ([b"ON", b"OPTIN", b"OPTOUT"], "ERR You can't specify both OPTIN mode and OPTOUT mode"),
    ([b"ON", b"BCAST", b"OPTIN"], "ERR OPTIN and OPTOUT are not compatible with BCAST"),
    ([b"ON", b"REDIRECT", b"999999"], "ERR The client ID you want redirect to does not exist"),
    ([b"ON", b"BCAST", b"PREFIX", b"a", b"PREFIX", b"ab"],
     "ERR Prefix 'a' overlaps with another provided prefix 'ab'. Prefixes for a single client must not overlap."),
    ([b"MAYBE"], "ERR syntax error"),
])
def test_tracking_errors(port, arguments, error):
    conn = resp.Connection(port)
    try:
        assert conn.call(b"CLIENT", b"TRACKING", *arguments) == resp.Error(error)
        assert conn.call(b"CLIENT", b"CACHING", b"YES") == resp.Error(
            "ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled")
        assert conn.call(b"CLIENT", b"GETREDIR") == -1
    finally:
        conn.close()
