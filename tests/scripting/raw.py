"""Byte-exact replies for the scripting suites: one connection per protocol version, each reply read whole
and returned as the bytes the server sent (so that a bulk string and a status, or RESP3's types, are told
apart)."""
import re
import socket

from support import resp


class RawConnection:
    def __init__(self, port, protocol=2, user=None, password=None):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buffer = b""
        if user is not None:
            self.call("AUTH", user, password)
        if protocol == 3:
            self.call("HELLO", "3")

    def close(self):
        self.sock.close()

    def call(self, *args):
        self.sock.sendall(resp.encode(*args))
        return self.reply()

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("closed by the server")
        self.buffer += data

    def _end_of_value(self, start):
        """The offset after the whole value starting at `start`, or None when more bytes are needed."""
        line_end = self.buffer.find(b"\r\n", start)
        if line_end < 0:
            return None
        kind, header = self.buffer[start:start + 1], self.buffer[start + 1:line_end]
        after = line_end + 2
        if kind in b"$=!":
            length = int(header)
            if length < 0:
                return after
            return after + length + 2 if len(self.buffer) >= after + length + 2 else None
        if kind in b"*~>%|":
            count = int(header)
            if count < 0:
                return after
            if kind in b"%|":
                count *= 2
            for _ in range(count):
                after = self._end_of_value(after)
                if after is None:
                    return None
            if kind == b"|":  # an attribute precedes the reply it annotates
                return self._end_of_value(after)
            return after
        return after

    def reply(self):
        while True:
            end = self._end_of_value(0) if self.buffer else None
            if end is not None:
                value, self.buffer = self.buffer[:end], self.buffer[end:]
                return value
            self._fill()


SHA = re.compile(rb"[0-9a-f]{40}")


def normalized(reply):
    """A reply with script SHA1s masked (ours and Redis's are the same, but a test's body may differ in
    whitespace it does not care about)."""
    return SHA.sub(b"<sha>", reply)
