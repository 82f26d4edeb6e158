"""A minimal raw RESP2/RESP3 client: exact replies (types, errors, nulls) for protocol and differential tests."""
import socket


class Error(Exception):
    """An error reply; equality compares the text."""

    def __init__(self, text):
        super().__init__(text)
        self.text = text

    def __eq__(self, other):
        return isinstance(other, Error) and other.text == self.text

    def __hash__(self):
        return hash(self.text)

    def __repr__(self):
        return f"Error({self.text!r})"


class Push(list):
    """A RESP3 push frame."""


class Verbatim(str):
    """A RESP3 verbatim string (format dropped)."""


def encode(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, str):
            a = a.encode()
        elif isinstance(a, int):
            a = str(a).encode()
        elif isinstance(a, float):
            a = repr(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


NULL_ARRAY = "(null array)"


class Connection:
    """A raw RESP connection. With strict_nulls, a RESP2 null array (`*-1`) reads as NULL_ARRAY so that
    it can be told from a null bulk string (`$-1`); otherwise both read as None."""

    def __init__(self, port, host="127.0.0.1", timeout=10, strict_nulls=False):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        # Unread replies are buf[pos:]; reading moves pos instead of slicing, so that a reply of a million
        # lines is read in linear time.
        self.buf = b""
        self.pos = 0
        self.strict_nulls = strict_nulls

    def close(self):
        self.sock.close()

    def send_raw(self, data):
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("connection closed by server")
        self.buf = self.buf[self.pos:] + chunk
        self.pos = 0

    def _line(self):
        while True:
            i = self.buf.find(b"\r\n", self.pos)
            if i >= 0:
                line = self.buf[self.pos:i]
                self.pos = i + 2
                return line
            self._fill()

    def _exact(self, n):
        while len(self.buf) - self.pos < n + 2:
            self._fill()
        data = self.buf[self.pos:self.pos + n]
        self.pos += n + 2
        return data

    def read(self):
        line = self._line()
        t, rest = line[:1], line[1:]
        if t == b"+":
            return rest.decode(errors="surrogateescape")
        if t == b"-":
            return Error(rest.decode(errors="surrogateescape"))
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if t in (b"*", b"~", b">"):
            n = int(rest)
            if n < 0:
                return NULL_ARRAY if self.strict_nulls and t == b"*" else None
            items = [self.read() for _ in range(n)]
            if t == b"~":
                return ("set", items)
            if t == b">":
                return Push(items)
            return items
        if t == b"%":
            n = int(rest)
            return {"map": [(self.read(), self.read()) for _ in range(n)]}
        if t == b"_":
            return None
        if t == b"#":
            return rest == b"t"
        if t == b",":
            return ("double", rest.decode())
        if t == b"(":
            return int(rest)
        if t == b"=":
            data = self._exact(int(rest))
            return Verbatim(data[4:].decode(errors="surrogateescape"))
        if t == b"!":
            return Error(self._exact(int(rest)).decode(errors="surrogateescape"))
        raise ValueError(f"bad reply type {line!r}")

    def call(self, *args):
        self.sock.sendall(encode(*args))
        return self.read()

    def pipeline(self, commands):
        self.sock.sendall(b"".join(encode(*c) for c in commands))
        return [self.read() for _ in commands]

    def closed_by_peer(self, timeout=2):
        """True when the server closes the connection (reads until EOF)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True
