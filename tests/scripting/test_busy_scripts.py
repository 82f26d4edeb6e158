"""Long scripts, as Redis 7.0 handles them: past busy-reply-threshold other clients get BUSY for all but a
few commands, SCRIPT KILL stops a script that has not written, SHUTDOWN NOSAVE stops the server without
logging a script that has. Every scenario runs on nova-cache-server and on redis-server and the two
transcripts (the exact bytes of each reply) must be the same."""
import socket
import time

import pytest

from raw import RawConnection, normalized
from support import resp, servers

THRESHOLD = "200"
ENDLESS = "local i = 0 while true do i = i + 1 end"
# Runs for about `ARGV[1]` milliseconds (TIME is allowed in scripts).
TIMED = """local s = redis.call('time')
while true do
  local n = redis.call('time')
  if (n[1] - s[1]) * 1000000 + (n[2] - s[2]) > tonumber(ARGV[1]) * 1000 then break end
end
return 'done'"""


def start(kind, *args, workdir=None):
    extra = ("--save", "") if kind == "nova" else ()
    start = servers.start_nova if kind == "nova" else servers.start_redis
    return start("--busy-reply-threshold", THRESHOLD, *extra, *args, workdir=workdir)


def send(port, *commands):
    """A connection that sent `commands` without reading the replies."""
    connection = RawConnection(port)
    connection.sock.sendall(b"".join(resp.encode(*command) for command in commands))
    return connection


def wait_busy(port, timeout=10):
    """A fresh connection, once the server answers it with BUSY."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        connection = RawConnection(port)
        if connection.call("PING").startswith(b"-BUSY"):
            return connection
        connection.close()
        time.sleep(0.02)
    raise AssertionError("the script never became busy")


def closed_without_reply(connection, timeout=10):
    connection.sock.settimeout(timeout)
    try:
        return connection.sock.recv(1) == b""
    except ConnectionResetError:
        return True


def nothing_received(connection, wait=0.2):
    connection.sock.settimeout(wait)
    try:
        connection.sock.recv(1)
        return False
    except socket.timeout:
        return True
    finally:
        connection.sock.settimeout(10)


def same_on_both(scenario, *args):
    transcripts = {}
    for kind in ("nova", "redis"):
        server = start(kind, *args)
        try:
            transcripts[kind] = [normalized(reply) if isinstance(reply, bytes) else reply for reply in scenario(server)]
        finally:
            server.cleanup()
    assert transcripts["nova"] == transcripts["redis"]
    return transcripts["nova"]


def test_a_busy_script_answers_busy_and_is_killed_by_script_kill():
    def scenario(server):
        caller = send(server.port, ["EVAL", ENDLESS, "0"], ["PING"])
        other = wait_busy(server.port)
        replies = [other.call(*command) for command in (
            ["PING"], ["GET", "x"], ["SET", "x", "1"], ["MULTI"], ["SET", "a", "b"], ["EXEC"], ["DISCARD"],
            ["AUTH", "nopass"], ["CLIENT", "LIST"], ["SHUTDOWN"], ["SHUTDOWN", "SAVE"], ["SCRIPT", "LOAD", "return 1"],
            ["EVAL", "return 1", "0"], ["SCRIPT", "KILL"])]
        replies += [caller.reply(), caller.reply(), other.call("PING"), other.call("SCRIPT", "KILL"), other.call("GET", "x")]
        return replies
    transcript = same_on_both(scenario)
    assert transcript[0].startswith(b"-BUSY Redis is busy running a script") and transcript[13] == b"+OK\r\n"
    assert transcript[14] == b"-ERR Script killed by user with SCRIPT KILL... script: <sha>, on @user_script:1.\r\n"


def test_pcall_cannot_keep_a_killed_script_going():
    def scenario(server):
        caller = send(server.port, ["EVAL", "while true do pcall(function() while true do end end) end", "0"])
        other = wait_busy(server.port)
        return [other.call("SCRIPT", "KILL"), caller.reply(), other.call("PING")]
    same_on_both(scenario)


def test_a_script_that_wrote_is_unkillable_and_shutdown_nosave_drops_it():
    def scenario(server):
        first = RawConnection(server.port)
        replies = [first.call("SET", "before", "1")]
        caller = send(server.port, ["EVAL", "redis.call('set', KEYS[1], 'x') " + ENDLESS, "1", "k"])
        other = wait_busy(server.port)
        replies += [other.call("SCRIPT", "KILL"), other.call("SHUTDOWN")]
        other.sock.sendall(resp.encode("SHUTDOWN", "NOSAVE"))
        replies += [closed_without_reply(other), closed_without_reply(caller)]
        server.process.wait(timeout=30)
        # The script's write is in no file: the AOF has what was acknowledged before it.
        again = start("nova" if server.name == "nova-cache-server" else "redis", "--appendonly", "yes", workdir=server.workdir)
        try:
            check = RawConnection(again.port)
            replies += [check.call("GET", "before"), check.call("EXISTS", "k")]
        finally:
            again.stop()
        return replies
    transcript = same_on_both(scenario, "--appendonly", "yes", "--appendfsync", "always")
    assert transcript[1].startswith(b"-UNKILLABLE") and transcript[3:] == [True, True, b"$1\r\n1\r\n", b":0\r\n"]


def test_blocked_clients_are_served_once_the_script_ends():
    def scenario(server):
        waiter = send(server.port, ["BLPOP", "q", "0"])
        time.sleep(0.2)
        caller = send(server.port, ["EVAL", "redis.call('rpush', KEYS[1], 'v') " + TIMED, "1", "q", "900"])
        other = wait_busy(server.port)
        replies = [nothing_received(waiter), other.call("LLEN", "q"), other.call("SCRIPT", "KILL")]
        replies += [caller.reply(), waiter.reply(), other.call("LLEN", "q")]
        return replies
    transcript = same_on_both(scenario)
    assert transcript[0] is True and transcript[3] == b"$4\r\ndone\r\n" and transcript[4] == b"*2\r\n$1\r\nq\r\n$1\r\nv\r\n"


def test_clients_wait_for_a_script_shorter_than_the_threshold():
    def scenario(server):
        caller = send(server.port, ["EVAL", TIMED, "0", "150"])
        time.sleep(0.05)
        other = RawConnection(server.port)
        return [other.call("PING"), caller.reply()]
    assert same_on_both(scenario) == [b"+PONG\r\n", b"$4\r\ndone\r\n"]


def test_script_kill_without_a_script():
    def scenario(server):
        return [RawConnection(server.port).call("SCRIPT", "KILL")]
    assert same_on_both(scenario) == [b"-NOTBUSY No scripts in execution right now.\r\n"]


@pytest.mark.parametrize("threads", ["1", "4"])
def test_every_event_loop_answers_while_a_script_is_busy(threads):
    """Connections on other event loops than the script's (io-threads) are answered too, new ones are
    accepted, and the server serves everything normally once the script is killed."""
    server = start("nova", "--io-threads", threads)
    try:
        caller = send(server.port, ["EVAL", ENDLESS, "0"])
        first = wait_busy(server.port)
        others = [RawConnection(server.port) for _ in range(8)]
        assert {other.call("PING") for other in others} == {first.call("PING")}
        assert others[3].call("SCRIPT", "KILL") == b"+OK\r\n"
        assert caller.reply().startswith(b"-ERR Script killed by user")
        assert [other.call("INCR", "n") for other in others] == [b":%d\r\n" % i for i in range(1, 9)]
    finally:
        server.cleanup()


def test_a_client_read_in_the_same_turn_as_the_script_is_answered_busy():
    """An event loop reads every ready connection before running their commands (their lookups are
    prefetched together): a command read in the same turn as the script's call still gets BUSY once the
    script passes the threshold, as one arriving later does, rather than waiting for the script's end.
    DEBUG SLEEP holds the loop so that both arrive before it looks again."""
    def scenario(server):
        sleeper = send(server.port, ["DEBUG", "SLEEP", "0.3"])
        time.sleep(0.1)
        caller = send(server.port, ["EVAL", TIMED, "0", "800"])
        other = send(server.port, ["PING"])
        started = time.time()
        other_reply = other.reply()
        waited = time.time() - started
        return [sleeper.reply(), other_reply, caller.reply(), waited < 0.7]

    assert same_on_both(scenario, "--io-threads", "1", "--enable-debug-command", "yes") == [
        b"+OK\r\n", b"-BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.\r\n",
        b"$4\r\ndone\r\n", True]
