"""MONITOR output compared line by line with redis-server (timestamps and client ports aside)."""
import re
import socket
import time

from support import resp

SESSION = [
    ["SET", "k", 'a b"c\n\\\x01\xff\t\r\x07\x08'],
    ["SELECT", "3"],
    ["GET", "k"],
    ["AUTH", "x"],
    ["HELLO", "2", "AUTH", "default", "pw", "SETNAME", "n"],
    ["CONFIG", "GET", "maxmemory"],
    ["CLIENT", "ID"],
    ["CLIENT", "LIST"],
    ["NOSUCHCOMMAND", "x"],
    ["GET"],
    ["LPUSH", "l", "1", "2"],
    ["PING"],
    ["RESET"],
]


def monitor_lines(port):
    monitor = resp.Connection(port, strict_nulls=True)
    assert monitor.call("MONITOR") == "OK"
    client = resp.Connection(port, strict_nulls=True)
    for command in SESSION:
        client.call(*command)
    client.pipeline([["MULTI"], ["SET", "x", "1"], ["MONITOR"], ["EXEC"]])
    client.call("PING", "barrier")
    monitor.sock.settimeout(5)
    data = b""
    while b'"barrier"' not in data:
        chunk = monitor.sock.recv(65536)
        assert chunk, "monitor connection closed"
        data += chunk
    lines = [line for line in data.split(b"\r\n") if line]
    for line in lines:
        assert re.match(rb"^\+\d+\.\d{6} \[\d+ 127\.0\.0\.1:\d+\] ", line), line
    # A monitor's own MONITOR is not shown; a second MONITOR gets no reply at all.
    monitor.send_raw(b"MONITOR\r\nPING\r\n")
    time.sleep(0.2)
    extra = monitor.sock.recv(65536)
    return [re.sub(rb"^\+\d+\.\d{6} \[(\d+) [^\]]+\]", rb"[\1]", line) for line in lines], extra


def test_monitor_stream_matches_redis(pair):
    nova, ref = pair
    ours, our_extra = monitor_lines(nova.port)
    theirs, their_extra = monitor_lines(ref.port)
    assert ours == theirs
    assert re.sub(rb"\d+\.\d{6} \[0 127\.0\.0\.1:\d+\]", b"", our_extra) == re.sub(rb"\d+\.\d{6} \[0 127\.0\.0\.1:\d+\]", b"", their_extra)


def test_monitor_flag_in_client_list(pair):
    for server in pair:
        monitor = resp.Connection(server.port, strict_nulls=True)
        monitor.call("CLIENT", "SETNAME", "watcher")
        monitor.call("MONITOR")
        other = resp.Connection(server.port, strict_nulls=True)
        listing = other.call("CLIENT", "LIST")
        listing = listing.decode() if isinstance(listing, bytes) else listing
        line = [entry for entry in listing.splitlines() if "name=watcher" in entry][0]
        assert " flags=O " in line, line
