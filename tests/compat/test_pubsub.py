"""Pub/Sub through redis-py's PubSub (RESP2 and RESP3) and raw RESP: subscriptions, patterns, the RESP2
subscribed-mode restrictions, PUBSUB introspection and keyspace notifications (expired, evicted)."""
import time

import pytest
import redis

from support import resp


def next_message(pubsub, timeout=5):
    deadline = time.time() + timeout
    while time.time() < deadline:
        message = pubsub.get_message(timeout=0.1)
        if message is not None:
            return message
    raise AssertionError("no message")


@pytest.mark.parametrize("protocol", [2, 3])
def test_redis_py_pubsub(r, port, protocol):
    client = redis.Redis(port=port, protocol=protocol)
    pubsub = client.pubsub()
    pubsub.subscribe("news")
    pubsub.psubscribe("user:*")
    assert next_message(pubsub) == {"type": "subscribe", "pattern": None, "channel": b"news", "data": 1}
    assert next_message(pubsub) == {"type": "psubscribe", "pattern": None, "channel": b"user:*", "data": 2}
    assert r.publish("news", "hello") == 1
    assert r.publish("user:7", "login") == 1
    assert r.publish("nobody", "x") == 0
    assert next_message(pubsub) == {"type": "message", "pattern": None, "channel": b"news", "data": b"hello"}
    assert next_message(pubsub) == {"type": "pmessage", "pattern": b"user:*", "channel": b"user:7", "data": b"login"}
    assert r.pubsub_channels() == [b"news"]
    assert r.pubsub_numsub("news", "other") == [(b"news", 1), (b"other", 0)]
    assert r.pubsub_numpat() == 1
    stats = r.info("stats")
    assert (stats["pubsub_channels"], stats["pubsub_patterns"]) == (1, 1)
    pubsub.unsubscribe("news")
    assert next_message(pubsub)["type"] == "unsubscribe"
    assert r.pubsub_channels() == []
    pubsub.close()
    client.close()


def test_messages_arrive_in_publishing_order_through_listen(r, port):
    pubsub = redis.Redis(port=port).pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe("ordered")
    for n in range(500):
        r.publish("ordered", n)
    received = []
    for message in pubsub.listen():
        if message["type"] == "message":
            received.append(int(message["data"]))
            if len(received) == 500:
                break
    assert received == list(range(500))
    pubsub.close()


def test_resp2_subscriber_may_only_subscribe_ping_quit_reset(r, port):
    conn = resp.Connection(port)
    try:
        assert conn.call(b"SUBSCRIBE", b"c") == [b"subscribe", b"c", 1]
        assert conn.call(b"GET", b"k") == resp.Error(
            "ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context")
        assert conn.call(b"PING") == [b"pong", b""]
        assert conn.call(b"PING", b"hi") == [b"pong", b"hi"]
        assert b"flags=P" in r.execute_command("CLIENT", "LIST") and b"sub=1" in r.execute_command("CLIENT", "LIST")
        assert conn.call(b"UNSUBSCRIBE") == [b"unsubscribe", b"c", 0]
        assert conn.call(b"UNSUBSCRIBE") == [b"unsubscribe", None, 0]
        assert conn.call(b"GET", b"k") is None
        conn.call(b"PSUBSCRIBE", b"a*")
        assert conn.call(b"RESET") == "RESET"
        assert r.pubsub_numpat() == 0
    finally:
        conn.close()


def test_resp3_subscriber_runs_any_command_and_gets_push_frames(r, port):
    conn = resp.Connection(port)
    try:
        conn.call(b"HELLO", b"3")
        confirmation = conn.call(b"SUBSCRIBE", b"c")
        assert isinstance(confirmation, resp.Push) and confirmation == [b"subscribe", b"c", 1]
        assert conn.call(b"SET", b"k", b"v") == "OK"
        r.publish("c", "m")
        message = conn.read()
        assert isinstance(message, resp.Push) and message == [b"message", b"c", b"m"]
    finally:
        conn.close()


def test_keyspace_notifications_for_writes_and_expiry(r, port):
    r.config_set("notify-keyspace-events", "KEA")
    try:
        pubsub = redis.Redis(port=port).pubsub()
        pubsub.psubscribe("__key*@0__:*")
        next_message(pubsub)
        r.set("session", "x", px=100)
        assert next_message(pubsub)["channel"] == b"__keyspace@0__:session"
        events = [next_message(pubsub) for _ in range(3)]
        assert [(e["channel"], e["data"]) for e in events] == [
            (b"__keyevent@0__:set", b"session"), (b"__keyspace@0__:session", b"expire"),
            (b"__keyevent@0__:expire", b"session")]
        # Never read again: the active expiry cycle removes it and announces it.
        expired = [next_message(pubsub), next_message(pubsub)]
        assert [(e["channel"], e["data"]) for e in expired] == [
            (b"__keyspace@0__:session", b"expired"), (b"__keyevent@0__:expired", b"session")]
        pubsub.close()
    finally:
        r.config_set("notify-keyspace-events", "")


def test_evicted_keys_are_announced(r, port):
    r.config_set("notify-keyspace-events", "Ee")
    pubsub = redis.Redis(port=port).pubsub()
    pubsub.subscribe("__keyevent@0__:evicted")
    next_message(pubsub)
    try:
        used = r.info("memory")["used_memory"]
        r.config_set("maxmemory-policy", "allkeys-random")
        r.config_set("maxmemory", used + 2 * 1024 * 1024)
        for n in range(200):
            r.set(f"big:{n}", "x" * 50_000)
        message = next_message(pubsub)
        assert message["channel"] == b"__keyevent@0__:evicted" and message["data"].startswith(b"big:")
    finally:
        r.config_set("maxmemory", 0)
        r.config_set("maxmemory-policy", "noeviction")
        r.config_set("notify-keyspace-events", "")
        pubsub.close()


def test_notify_keyspace_events_config_is_validated_and_canonical(r):
    with pytest.raises(redis.ResponseError):
        r.config_set("notify-keyspace-events", "Q")
    r.config_set("notify-keyspace-events", "KEA")
    assert r.config_get("notify-keyspace-events") == {"notify-keyspace-events": "AKE"}
    r.config_set("notify-keyspace-events", "")


def test_client_list_and_kill_by_pubsub_type(r, port):
    conn = resp.Connection(port)
    try:
        conn.call(b"SUBSCRIBE", b"typed")
        subscribers = r.execute_command("CLIENT", "LIST", "TYPE", "pubsub").decode().splitlines()
        assert len(subscribers) == 1 and "sub=1" in subscribers[0]
        assert all("flags=P" not in line for line in r.execute_command("CLIENT", "LIST", "TYPE", "normal").decode().splitlines())
        assert r.execute_command("CLIENT", "KILL", "TYPE", "pubsub") == 1
        assert conn.closed_by_peer()
        assert r.pubsub_numsub("typed") == [(b"typed", 0)]
    finally:
        conn.close()
