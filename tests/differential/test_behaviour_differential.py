"""Behaviour that differed from redis-server 7.0 (issue 16), compared on both servers: commands flagged
no-multi refused while queueing, and a blocked BLMOVE/BRPOPLPUSH whose destination holds another type."""
import socket
import time

from support import resp


def session(port, commands):
    conn = resp.Connection(port)
    try:
        return [conn.call(*c.split()) for c in commands]
    finally:
        conn.close()


def test_no_multi_commands_are_refused_while_queueing(pair):
    nova, ref = pair
    for command in ("SAVE", "SHUTDOWN", "SHUTDOWN NOSAVE"):
        script = ["FLUSHALL", "MULTI", "SET k v", command, "EXEC", "EXISTS k"]
        ours, theirs = session(nova.port, script), session(ref.port, script)
        assert ours == theirs, command
        assert ours[3] == resp.Error("ERR Command not allowed inside a transaction")
        assert ours[4] == resp.Error("EXECABORT Transaction discarded because of previous errors.")
    assert nova.alive()
    assert session(nova.port, ["PING"]) == ["PONG"]


def blocked_move_outcome(port):
    """Two clients block with BLMOVE on `src`, the first into a string key; a push to `src` answers the
    first with WRONGTYPE and serves the second."""
    setup = resp.Connection(port)
    setup.call("FLUSHALL")
    setup.call("SET", "wrong", "x")
    first = socket.create_connection(("127.0.0.1", port))
    first.sendall(resp.encode("BLMOVE", "src", "wrong", "LEFT", "RIGHT", "5"))
    time.sleep(0.1)
    second = socket.create_connection(("127.0.0.1", port))
    second.sendall(resp.encode("BRPOPLPUSH", "src", "good", "5"))
    time.sleep(0.1)
    pushed = setup.call("RPUSH", "src", "a")
    first.settimeout(3)
    second.settimeout(3)
    replies = (first.recv(1000), second.recv(1000))
    state = (setup.call("LRANGE", "src", "0", "-1"), setup.call("LRANGE", "good", "0", "-1"),
             setup.call("GET", "wrong"))
    for s in (first, second):
        s.close()
    setup.close()
    return pushed, replies, state


def test_blocked_move_into_a_key_of_another_type(pair):
    nova, ref = pair
    ours, theirs = blocked_move_outcome(nova.port), blocked_move_outcome(ref.port)
    assert ours == theirs
    assert ours[1][0].startswith(b"-WRONGTYPE")
    assert ours[1][1] == b"$1\r\na\r\n"
