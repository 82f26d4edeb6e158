"""Behaviour that differed from redis-server 7.0 (issue 16), compared on both servers: commands flagged
no-multi refused while queueing, a blocked BLMOVE/BRPOPLPUSH whose destination holds another type,
SLOWLOG, ROLE, CLIENT REPLY and CLIENT PAUSE."""
import re
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


SLOW_SCRIPT = [
    ["CLIENT", "SETNAME", "slow-one"], ["SET", "k", "v"], ["GET", "k"], ["AUTH", "nobody", "secret"],
    ["HELLO", "2", "AUTH", "default", "wrong"], ["SET", "long", "x" * 300], ["RPUSH", "many"] + [str(i) for i in range(40)],
    ["MULTI"], ["INCR", "n"], ["EXEC"], ["SLOWLOG", "LEN"],
]


def slowlog_session(port):
    conn = resp.Connection(port)
    try:
        address = next(f.split("=", 1)[1] for f in conn.call("CLIENT", "INFO").decode().split() if f.startswith("addr="))
        conn.call("CONFIG", "SET", "slowlog-log-slower-than", "0")
        conn.call("CONFIG", "SET", "slowlog-max-len", "128")
        conn.call("SLOWLOG", "RESET")
        replies = [conn.call(*command) for command in SLOW_SCRIPT]
        replies[4] = replies[4][:6]  # HELLO: the client id differs
        entries = conn.call("SLOWLOG", "GET", "-1")
        errors = [conn.call("SLOWLOG", "GET", value) for value in ("x", "-2", "1.5")]
        errors.append(conn.call("SLOWLOG", "GET", "1", "2"))
        conn.call("CONFIG", "SET", "slowlog-max-len", "5")
        conn.call("PING")
        length_before_reset = conn.call("SLOWLOG", "LEN")
        conn.call("SLOWLOG", "RESET")
        after_reset = [entry[3] for entry in conn.call("SLOWLOG", "GET")]
        first_id = entries[-1][0]
        shape = [(e[0] - first_id, e[3], e[4] == address.encode(), e[5]) for e in entries]
        assert all(isinstance(e[1], int) and isinstance(e[2], int) for e in entries)
        return replies, shape, errors, length_before_reset, after_reset
    finally:
        conn.call("CONFIG", "SET", "slowlog-log-slower-than", "10000")
        conn.call("CONFIG", "SET", "slowlog-max-len", "128")
        conn.close()


def test_slowlog_matches_redis(pair):
    nova, ref = pair
    ours, theirs = slowlog_session(nova.port), slowlog_session(ref.port)
    assert ours == theirs
    _, shape, _, length, _ = ours
    assert length == 5
    logged = {entry[1][0]: entry[1] for entry in shape}
    assert b"EXEC" not in logged and logged[b"AUTH"] == [b"AUTH", b"(redacted)", b"(redacted)"]
    assert logged[b"RPUSH"][-1] == b"... (11 more arguments)" and len(logged[b"RPUSH"]) == 32
    assert [b"SET", b"long", b"x" * 128 + b"... (172 more bytes)"] in [entry[1] for entry in shape]


def test_small_server_commands_match_redis(pair):
    nova, ref = pair
    script = ["ROLE", "SLOWLOG HELP", "CLIENT KILL USER nosuch", "CLIENT KILL USER default SKIPME yes",
              "CLIENT KILL USER nosuch ID 1", "SLOWLOG NOPE", "ROLE extra"]
    ours, theirs = session(nova.port, script), session(ref.port, script)
    assert ours == theirs
    assert ours[0] == [b"master", 0, []]


def reply_mode_transcript(port):
    """Pipelines commands around CLIENT REPLY OFF/SKIP/ON and reads whatever comes back."""
    conn = resp.Connection(port)
    try:
        conn.call("FLUSHALL")
        commands = [["SET", "a", "1"], ["CLIENT", "REPLY", "SKIP"], ["INCR", "a"], ["GET", "a"],
                    ["CLIENT", "REPLY", "OFF"], ["INCR", "a"], ["CLIENT", "REPLY", "SKIP"], ["NOPE"],
                    ["MULTI"], ["INCR", "a"], ["EXEC"], ["CLIENT", "REPLY", "ON"], ["GET", "a"],
                    ["CLIENT", "REPLY", "SKIP"], ["CLIENT", "REPLY", "SKIP"], ["GET", "a"], ["GET", "a"],
                    ["CLIENT", "REPLY", "MAYBE"], ["PING", "done"]]
        conn.send_raw(b"".join(resp.encode(*c) for c in commands))
        replies = []
        while True:
            replies.append(conn.read())
            if replies[-1] == b"done":
                return replies
    finally:
        conn.close()


def test_client_reply_modes_match_redis(pair):
    nova, ref = pair
    ours, theirs = reply_mode_transcript(nova.port), reply_mode_transcript(ref.port)
    assert ours == theirs
    assert ours[:3] == ["OK", b"2", "OK"]


def pause_session(port):
    """CLIENT PAUSE WRITE and ALL, seen from other clients: what waits, what is answered at once, in
    which order the waiting writes run, and what happens to keys whose TTL passes meanwhile."""
    control = resp.Connection(port)
    control.call("FLUSHALL")
    control.call("CONFIG", "RESETSTAT")
    control.call("SET", "ttl", "x", "PX", "50")
    control.call("SET", "k", "0")
    queued = socket.create_connection(("127.0.0.1", port))
    queued.sendall(resp.encode("MULTI") + resp.encode("SET", "k", "from-multi"))
    queued.settimeout(3)
    started = b""
    while started.count(b"\r\n") < 2:
        started += queued.recv(100)
    outcome = {"queued": started, "pause": control.call("CLIENT", "PAUSE", "100000", "WRITE")}
    time.sleep(0.2)  # the TTL passes during the pause
    reader = resp.Connection(port)
    outcome["reads"] = [reader.call("GET", "k"), reader.call("GET", "ttl"), reader.call("EXISTS", "ttl"),
                        reader.call("DBSIZE"), reader.call("GET"), reader.call("NOSUCH"),
                        reader.call("MULTI"), reader.call("GET", "k"), reader.call("EXEC")]
    writers = []
    for value in ("first", "second"):
        writer = socket.create_connection(("127.0.0.1", port))
        writer.sendall(resp.encode("SET", "k", value) + resp.encode("GET", "k"))
        writers.append(writer)
        time.sleep(0.05)
    queued.sendall(resp.encode("EXEC"))
    time.sleep(0.2)
    for writer in writers + [queued]:
        writer.settimeout(0.2)
        try:
            outcome.setdefault("early", []).append(writer.recv(100))
        except socket.timeout:
            outcome.setdefault("early", []).append(None)
    stats = control.call("INFO", "stats").decode()
    outcome["expired-during-pause"] = re.search(r"expired_keys:(\d+)", stats).group(1)
    outcome["blocked"] = re.search(r"blocked_clients:(\d+)", control.call("INFO", "clients").decode()).group(1)
    outcome["unpause"] = control.call("CLIENT", "UNPAUSE")
    replies = []
    for writer in writers + [queued]:
        writer.settimeout(3)
        data = b""
        while data.count(b"\r\n") < 2:
            data += writer.recv(100)
        replies.append(data)
        writer.close()
    outcome["after"] = replies
    outcome["final"] = control.call("GET", "k")
    control.call("GET", "ttl")
    outcome["expired-after"] = re.search(r"expired_keys:(\d+)", control.call("INFO", "stats").decode()).group(1)
    # ALL: even reads wait, until the pause times out.
    control.call("CLIENT", "PAUSE", "300", "ALL")
    start = time.time()
    outcome["read-during-all"] = reader.call("GET", "k")
    outcome["waited"] = time.time() - start > 0.2
    reader.close()
    control.close()
    return outcome


def test_client_pause_matches_redis(pair):
    nova, ref = pair
    ours, theirs = pause_session(nova.port), pause_session(ref.port)
    assert ours == theirs
    assert ours["early"] == [None, None, None] and ours["expired-during-pause"] == "0"
    assert ours["blocked"] == "3" and ours["waited"]


def buffer_fields(port):
    """CLIENT LIST/INFO buffer fields: the caller's own command in qbuf and argv-mem, an idle client at 0,
    a blocked client holding its command's arguments."""
    conn = resp.Connection(port)
    idle = resp.Connection(port)
    idle_id = idle.call("CLIENT", "ID")
    blocked = socket.create_connection(("127.0.0.1", port))
    blocked.sendall(resp.encode("BLPOP", "nothing-here", "0"))
    time.sleep(0.1)

    def fields(line):
        values = dict(item.split("=", 1) for item in line.split() if "=" in item)
        return {name: values[name] for name in ("qbuf", "argv-mem", "obl", "oll", "omem")}

    own = fields(conn.call("CLIENT", "INFO").decode())
    lines = conn.call("CLIENT", "LIST").decode().splitlines()
    others = {}
    for line in lines:
        if f"id={idle_id} " in line:
            others["idle"] = fields(line)
        elif "cmd=blpop" in line:
            others["blocked"] = fields(line)
        tot = int(line.split("tot-mem=")[1].split()[0])
        assert tot > 0, line
    blocked.close()
    idle.close()
    conn.close()
    return own, others


def test_client_buffer_fields_match_redis(pair):
    nova, ref = pair
    ours, theirs = buffer_fields(nova.port), buffer_fields(ref.port)
    assert ours == theirs
    assert ours[0]["qbuf"] == "26" and ours[0]["argv-mem"] == "10"
    assert ours[1]["blocked"]["argv-mem"] == "18"
