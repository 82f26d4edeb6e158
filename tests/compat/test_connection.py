"""Connection handling through redis-py 6.4.0: databases, URLs, AUTH, RESP3, pipelining."""
import pytest
import redis

from support import servers


def test_db_selection_and_url(nova_server):
    port = nova_server.port
    r1 = redis.Redis(host="127.0.0.1", port=port, db=1)
    r1.flushdb()
    r1.set("only-in-1", "x")
    r0 = redis.Redis(host="127.0.0.1", port=port, db=0)
    assert r0.get("only-in-1") is None
    via_url = redis.from_url(f"redis://127.0.0.1:{port}/1")
    assert via_url.get("only-in-1") == b"x"
    assert redis.Redis(host="localhost", port=port, db=1).ping() is True
    for c in (r1, r0, via_url):
        c.close()


def test_auth_noauth_wrongpass():
    server = servers.start_nova(password="pw")
    try:
        anonymous = redis.Redis(port=server.port)
        with pytest.raises(redis.AuthenticationError):
            anonymous.get("a")
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=server.port, password="wrong").ping()
        ok = redis.from_url(f"redis://:pw@127.0.0.1:{server.port}/1")
        assert ok.ping()
        ok.set("a", "1")
        assert redis.Redis(port=server.port, username="default", password="pw", db=1).get("a") == b"1"
        assert redis.Redis(port=server.port, password="pw", protocol=3).ping()
    finally:
        server.cleanup()


def test_pipeline_thousand_commands(r):
    pipe = r.pipeline(transaction=False)
    for i in range(1000):
        pipe.set(f"p:{i}", i)
    for i in range(1000):
        pipe.get(f"p:{i}")
    results = pipe.execute()
    assert results[:1000] == [True] * 1000
    assert results[1000:] == [str(i).encode() for i in range(1000)]


def test_resp3_client(nova_server):
    c = redis.Redis(port=nova_server.port, protocol=3)
    c.flushall()
    assert c.ping()
    c.set("k", "v")
    assert c.get("k") == b"v"
    assert c.get("missing") is None
    info = c.info()
    assert info["redis_version"]
    hello = c.execute_command("HELLO", "3")
    assert hello[b"proto"] == 3 or hello["proto"] == 3
    assert c.config_get("maxmemory") == {b"maxmemory": b"0"} or c.config_get("maxmemory") == {"maxmemory": "0"}
    c.close()


def test_client_commands(r):
    assert isinstance(r.client_id(), int)
    assert r.client_setname("worker-1")
    assert r.client_getname() in ("worker-1", b"worker-1")
    listing = r.client_list()
    assert any(c["name"] == "worker-1" for c in listing)
    info = r.client_info()
    assert info["name"] == "worker-1"
    with pytest.raises(redis.ResponseError, match="Client names cannot contain spaces"):
        r.client_setname("bad name")
    assert r.execute_command("CLIENT", "NO-EVICT", "on")
    assert r.execute_command("CLIENT", "NO-TOUCH", "on")
    assert r.execute_command("CLIENT", "NO-TOUCH", "off")


def test_client_kill(nova_server):
    victim = redis.Redis(port=nova_server.port)
    victim.client_setname("victim")
    killer = redis.Redis(port=nova_server.port)
    vid = victim.client_id()
    assert killer.client_kill_filter(_id=vid) == 1
    names = [c["name"] for c in killer.client_list()]
    assert "victim" not in names
    with pytest.raises(redis.ResponseError, match="No such client"):
        killer.client_kill("1.2.3.4:5")
    killer.close()


def test_echo_ping_quit(nova_server):
    c = redis.Redis(port=nova_server.port)
    assert c.echo("hi") == b"hi"
    assert c.ping()
    assert c.execute_command("PING", "msg") is False  # redis-py maps any reply other than PONG to False
    c.close()


def test_hello_with_auth_and_setname():
    server = servers.start_nova(password="pw")
    try:
        from support import resp
        conn = resp.Connection(server.port)
        reply = conn.call("HELLO", "3", "AUTH", "default", "pw", "SETNAME", "app-1")
        fields = dict(reply["map"])
        assert fields[b"proto"] == 3 and fields[b"server"] == b"redis"
        assert conn.call("CLIENT", "GETNAME") == b"app-1"
        assert conn.call("GET", "missing") is None
        other = resp.Connection(server.port)
        assert other.call("HELLO", "3", "AUTH", "default", "nope") == resp.Error(
            "WRONGPASS invalid username-password pair or user is disabled.")
        assert other.call("HELLO", "3").text.startswith("NOAUTH HELLO must be called with the client already authenticated")
        assert other.call("HELLO", "3", "FOO").text == "ERR Syntax error in HELLO option 'FOO'"
    finally:
        server.cleanup()


def test_reset_returns_connection_to_defaults(nova_server):
    from support import resp
    conn = resp.Connection(nova_server.port)
    conn.call("HELLO", "3")
    conn.call("SELECT", "2")
    conn.call("CLIENT", "SETNAME", "x")
    assert conn.call("RESET") == "RESET"
    assert conn.call("CLIENT", "GETNAME") is None
    info = conn.call("CLIENT", "INFO").decode()
    assert " db=0 " in info and " resp=2 " in info


def test_client_setinfo(r):
    assert r.execute_command("CLIENT", "SETINFO", "LIB-NAME", "nova-test")
    assert r.execute_command("CLIENT", "SETINFO", "LIB-VER", "1.2.3")
    info = r.client_info()
    assert info["lib-name"] == "nova-test" and info["lib-ver"] == "1.2.3"
    with pytest.raises(redis.ResponseError, match="Unrecognized option 'FOO'"):
        r.execute_command("CLIENT", "SETINFO", "FOO", "x")
    with pytest.raises(redis.ResponseError, match="cannot contain spaces"):
        r.execute_command("CLIENT", "SETINFO", "LIB-NAME", "a b")
