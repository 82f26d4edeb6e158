"""A seeded RESP fuzzer: random and mutated frames, odd inline quoting, huge and negative lengths, and
valid commands from the server's own command table with random arguments (extreme numbers among them),
over RESP2 and RESP3, from several connections at once.

While it runs, a watchdog connection PINGs the server every 100 ms: every PING must be answered within a
second, and the process must never exit. `run()` returns a report; the test and `scripts/fuzz` decide
what to assert (RSS back near its start after the clients leave and FLUSHALL, for instance).

Commands that would stop the server or lock everyone out on purpose (SHUTDOWN, DEBUG, CLIENT PAUSE,
CONFIG SET of the port, directory, passwords …, ACL rules for the default user) are not sent: the
fuzzer looks for what a client can break by accident or malice, not for what an administrator may do.
"""
import collections
import errno
import os
import random
import selectors
import socket
import struct
import threading
import time

# Numbers around every boundary a parser or an arithmetic step can trip on. Not 536870911: SETRANGE at
# that offset is a valid 512 MB string, which Redis would build too; the fuzzer looks for what must fail.
EXTREME_NUMBERS = [
    "0", "-0", "1", "-1", "2", "3", "7", "10", "100", "-100", "255", "256", "1000", "65535", "65536",
    "2147483647", "2147483648", "-2147483648", "-2147483649", "4294967295", "4294967296",
    "9223372036854775807", "-9223372036854775807", "-9223372036854775808", "9223372036854775808",
    "18446744073709551615", "18446744073709551616", "99999999999999999999999",
    "536870912", "536870913", "4611686018427387903", "4611686018427387904", "-4611686018427387904",
    "9007199254740993", "1e16", "9.2e15", "9.3e15", "1e18", "1e19", "1e300", "-1e300", "1e-300", "1e400",
    "0.1", "-0.1", "0.5", "1.5", "-1.5", "3.14", "1e3", "0x10", "0x7fffffffffffffff", "010", "+1", " 1",
    "1 ", "1.", ".5", "inf", "-inf", "+inf", "infinity", "nan", "-nan", "NaN", "1,5", "", "-", "+", "(1",
    "(-1", "[a", "(a", "(", "[", "(inf", "(-inf", "(nan", "1e", "e1", "--1", "0b1",
]
# Redis keywords, so that random arguments reach option parsers.
KEYWORDS = [
    "NX", "XX", "GT", "LT", "CH", "INCR", "GET", "EX", "PX", "EXAT", "PXAT", "KEEPTTL", "PERSIST",
    "WITHSCORES", "WITHSCORE", "LIMIT", "BYSCORE", "BYLEX", "REV", "MATCH", "COUNT", "TYPE", "ID", "ADDR",
    "LADDR", "USER", "SKIPME", "ON", "OFF", "YES", "NO", "BEFORE", "AFTER", "LEFT", "RIGHT", "WEIGHTS",
    "AGGREGATE", "SUM", "MIN", "MAX", "IDX", "LEN", "MINMATCHLEN", "WITHMATCHLEN", "REPLACE", "DB",
    "ASYNC", "SYNC", "FLUSH", "FREQ", "IDLETIME", "ENCODING", "REFCOUNT", "HELP", "BCAST", "PREFIX",
    "OPTIN", "OPTOUT", "NOLOOP", "REDIRECT", "NOSAVE", "SAVE", "NOW", "FORCE", "ABORT", "SETNAME", "AUTH",
    "TIMEOUT", "ERROR", "RANK", "MAXLEN", "WITHVALUES", "STORE", "BY", "ASC", "DESC", "ALPHA", "FIELDS",
    "NOVALUE", "NORMAL", "PUBSUB", "MASTER", "REPLICA", "SLAVE", "LIB-NAME", "LIB-VER", "default", "*",
    "numpat", "channels", "numsub", "shardchannels", "WRITE", "ALL", "RESET", "LOG", "LIST", "USERS",
]
# Keys shared by every connection, so that types collide (WRONGTYPE paths) and commands meet each
# other's data; `{t}` tags and a binary key included.
KEYS = ["k0", "k1", "k2", "k3", "k4", "k5", "{t}a", "{t}b", "list", "set", "zset", "hash", "str",
        "\x00bin\xff", ""]
# Commands whose main argument is Lua code: mostly sent with random scripts (FrameGenerator.scripted).
SCRIPTED = {"eval", "eval_ro", "function", "fcall", "fcall_ro"}
# Commands never sent (see the module docstring), and subcommands likewise. PFSELFTEST holds the server
# for half a second on redis-server too, as DEBUG SLEEP would: an administrator's tool.
EXCLUDED = {"shutdown", "debug", "monitor", "sync", "psync", "replicaof", "slaveof", "failover",
            "migrate", "module", "cluster", "readonly", "readwrite", "asking", "pfselftest"}
# Commands taking bit offsets. An offset below 2^32 is a valid bitmap of up to 512 MB, which Redis would
# build too (as SETRANGE at 536870911, left out above): offsets from 2^26 up are sent as 2^32, the first
# that must fail.
BIT_OFFSET_COMMANDS = {"setbit", "getbit", "bitfield", "bitfield_ro"}


def tamed_bit_offset(word):
    text = word[1:] if word.startswith("#") else word
    try:
        offset = int(text) * (64 if word.startswith("#") else 1)
    except ValueError:
        return word
    return "4294967296" if (1 << 26) <= offset < (1 << 32) else word
EXCLUDED_SUB = {("client", "pause"), ("client", "kill"), ("config", "set"), ("acl", "setuser"), ("acl", "deluser"),
                ("acl", "load"), ("config", "rewrite"), ("config", "resetstat")}
# CONFIG SET: parameters a client may change without stopping the server or locking others out, with
# values from the extremes.
CONFIG_PARAMETERS = [
    "hash-max-listpack-entries", "hash-max-listpack-value", "hash-max-ziplist-entries",
    "list-max-listpack-size", "list-compress-depth", "set-max-intset-entries", "zset-max-listpack-entries",
    "zset-max-listpack-value", "maxmemory-samples", "lfu-log-factor", "lfu-decay-time",
    "slowlog-log-slower-than", "slowlog-max-len", "notify-keyspace-events", "hz", "timeout",
    "maxmemory-policy", "proto-max-bulk-len", "client-query-buffer-limit", "latency-monitor-threshold",
    "tracking-table-max-keys", "stop-writes-on-bgsave-error", "active-expire-effort", "maxmemory",
    "client-output-buffer-limit", "appendfsync", "lazyfree-lazy-eviction", "activerehashing",
    "hll-sparse-max-bytes", "stream-node-max-entries", "no-such-parameter", "save",
]
CONFIG_VALUES = ["yes", "no", "allkeys-lru", "allkeys-lfu", "volatile-ttl", "noeviction", "KEA", "Ex",
                 "everysec", "always", "normal 0 0 0", "pubsub 1 1 1", "1mb", "100mb", "1gb", "-1k",
                 "3600 1", "x"]
ACL_USERS = ["fz1", "fz2", "fz3"]
ACL_RULES = ["on", "off", ">pw", "<pw", "#" + "a" * 64, "#short", "nopass", "resetpass", "~*", "~k*",
             "%R~*", "%W~k*", "&*", "resetchannels", "+@all", "-@all", "+get", "-set", "+client|id",
             "+@nonexistent", "allkeys", "allcommands", "reset", "(~k* +get)", "(", "clearselectors",
             "+select|0", "-@dangerous"]


def _bulk(data):
    return b"$%d\r\n%s\r\n" % (len(data), data)


def encode(words):
    return b"*%d\r\n" % len(words) + b"".join(_bulk(w) for w in words)


class CommandTable:
    """What the server says about its commands: name, arity, subcommands, and argument tokens."""

    def __init__(self, entries):
        self.entries = entries  # [(name, arity, [(subname, arity)], [tokens])]

    @classmethod
    def fetch(cls, port, password=None):
        from support import resp
        conn = resp.Connection(port)
        try:
            if password:
                conn.call("AUTH", password)
            info = conn.call("COMMAND")
            docs = conn.call("COMMAND", "DOCS")
        finally:
            conn.close()
        tokens = {}

        def collect(name, arguments):
            for argument in arguments or []:
                fields = dict(zip(argument[::2], argument[1::2]))
                if b"token" in fields:
                    tokens.setdefault(name, set()).add(fields[b"token"].decode())
                collect(name, fields.get(b"arguments"))

        def walk(pairs):
            for name, doc in zip(pairs[::2], pairs[1::2]):
                fields = dict(zip(doc[::2], doc[1::2]))
                collect(name.decode().split("|")[0], fields.get(b"arguments"))
                walk(fields.get(b"subcommands") or [])

        walk(docs)
        entries = []
        for item in info:
            name = item[0].decode().lower()
            subcommands = []
            if len(item) > 9 and item[9]:
                for sub in item[9]:
                    full = sub[0].decode().lower()
                    subcommands.append((full.split("|", 1)[1], sub[1]))
            entries.append((name, item[1], subcommands, sorted(tokens.get(name, ()))))
        entries.sort()
        return cls(entries)


class FrameGenerator:
    """Deterministic frames for one seed."""

    def __init__(self, table, seed):
        self.rng = random.Random(seed)
        self.commands = [e for e in table.entries if e[0] not in EXCLUDED]

    # -- arguments

    def number(self):
        rng = self.rng
        pick = rng.random()
        if pick < 0.6:
            return rng.choice(EXTREME_NUMBERS)
        if pick < 0.8:
            return str(rng.randint(-20, 20))
        if pick < 0.9:
            return repr(rng.uniform(-1e6, 1e6))
        return str(rng.randint(-(1 << 64), 1 << 64))

    def string(self):
        rng = self.rng
        pick = rng.random()
        if pick < 0.5:
            return "".join(rng.choice("abcxyz01*?[]^-\\") for _ in range(rng.randint(0, 8)))
        if pick < 0.8:
            return bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 24))).decode("latin-1")
        if pick < 0.97:
            return "v" * rng.randint(64, 4096)
        return "B" * rng.randint(60_000, 600_000)

    def argument(self, tokens):
        rng = self.rng
        pick = rng.random()
        if pick < 0.25:
            return rng.choice(KEYS)
        if pick < 0.55:
            return self.number()
        if pick < 0.75 and tokens:
            return rng.choice(tokens)
        if pick < 0.85:
            return rng.choice(KEYWORDS)
        return self.string()

    def command(self):
        rng = self.rng
        name, arity, subcommands, tokens = rng.choice(self.commands)
        if name in SCRIPTED and rng.random() < 0.8:
            return self.scripted(name)
        words = [name if rng.random() < 0.8 else name.upper()]
        if subcommands and rng.random() < 0.95:
            sub, arity = rng.choice(subcommands)
            if (name, sub) in EXCLUDED_SUB:
                return self.special(name, sub) or [name, "help"]
            words.append(sub)
        count = arity if arity > 0 else -arity + rng.choice([0, 0, 1, 2, 3, 4, 6, 9])
        if rng.random() < 0.05:
            count += rng.choice([-1, 1])
        while len(words) < max(1, count):
            words.append(self.argument(tokens))
        if name in BIT_OFFSET_COMMANDS:
            words = [tamed_bit_offset(word) for word in words]
        return words

    # -- scripts

    def repeated(self):
        """`string.rep` of a Lua value. A script's own input may be an argument of hundreds of KB, which
        a 1,000-fold repetition makes a string of hundreds of MB: valid (redis-server 7.0 builds one
        from a 409 KB argument too, in 23 s where this server took 3), but a busy script, which is not
        what the fuzzer looks for; such values are repeated at most twice."""
        value = self.lua_literal()
        count = self.rng.choice([0, 2, 1000])
        if value in ("KEYS[1]", "ARGV[1]") or len(value) > 4000:
            count = min(count, 2)
        return "return string.rep(%s, %d)" % (value, count)

    def lua_literal(self):
        """A Lua value: a quoted argument (escaped byte by byte), a number, or a script's own input."""
        rng = self.rng
        choice = rng.random()
        if choice < 0.5:
            text = self.argument([]) if rng.random() < 0.7 else rng.choice(KEYS)
            data = text.encode("latin-1") if isinstance(text, str) else text
            return '"' + "".join("\\%d" % b for b in data) + '"'
        if choice < 0.7:
            return rng.choice(EXTREME_NUMBERS[:40]).strip() or "0"
        return rng.choice(["KEYS[1]", "ARGV[1]", "#KEYS", "#ARGV", "nil", "true", "false", "{}", "{1,2}",
                           "{ok='x'}", "{err='x'}", "{double=1.5}", "{map={a=1}}", "{set={a=true}}"])

    def lua_call(self):
        """redis.call or pcall of a random command of the table, with random arguments."""
        rng = self.rng
        name, arity, subcommands, tokens = rng.choice(self.commands)
        words = ['"%s"' % name]
        if subcommands and rng.random() < 0.9:
            sub, arity = rng.choice(subcommands)
            words.append('"%s"' % sub)
        count = arity if arity > 0 else -arity + rng.choice([0, 1, 2])
        while len(words) < max(1, count):
            words.append(self.lua_literal() if rng.random() < 0.6 else '"%s"' % rng.choice(tokens or KEYWORDS))
        return "redis.%s(%s)" % (rng.choice(["call", "pcall", "pcall"]), ", ".join(words))

    def lua_statement(self):
        rng = self.rng
        return rng.choice([
            lambda: "local r = " + self.lua_call(),
            lambda: "return " + self.lua_call(),
            lambda: "return " + self.lua_literal(),
            lambda: "redis.setresp(%s)" % rng.choice(["2", "3", "4", "'x'"]),
            lambda: "return cjson.decode(%s)" % self.lua_literal(),
            lambda: "return cjson.encode({%s})" % self.lua_literal(),
            lambda: "return cmsgpack.unpack(%s)" % self.lua_literal(),
            lambda: "return cmsgpack.pack(%s, %s)" % (self.lua_literal(), self.lua_literal()),
            lambda: "return struct.unpack(%s, %s)" % (rng.choice(['"<i4"', '">d"', '"bc0"', '"!4i8"', '"Bh"']), self.lua_literal()),
            lambda: "return bit.tohex(%s)" % self.lua_literal(),
            lambda: "return redis.sha1hex(%s)" % self.lua_literal(),
            lambda: "return redis.error_reply(%s)" % self.lua_literal(),
            lambda: "return redis.status_reply(%s)" % self.lua_literal(),
            lambda: "for i = 1, %d do redis.call('incr', 'k0') end" % rng.choice([1, 10, 1000]),
            lambda: "local t = {} for i = 1, %d do t[i] = i end return t" % rng.choice([0, 3, 5000]),
            lambda: self.repeated(),
            lambda: "error(%s)" % self.lua_literal(),
            lambda: "x = 1",
            lambda: "return " + rng.choice(["os.time()", "loadstring('return 1')()", "getmetatable('').__index",
                                            "redis.acl_check_cmd('get', 'k')", "math.random(10)", "tostring(nil)"]),
            lambda: rng.choice(["return (", "end", "local = 1", "return {", "\0", "--[[", "#!lua flags=no-writes\nreturn 1",
                                "#!lua flags=bogus\nreturn 1", "#!lua name=x\nreturn 1"]),
        ])()

    def lua_body(self):
        """A few statements; a `return` only as the last (Lua refuses one in the middle of a block)."""
        statements = [self.lua_statement() for _ in range(self.rng.choice([1, 1, 2, 3, 5]))]
        statements[:-1] = [("local _ = " + line[len("return "):]) if line.startswith("return ") else line
                           for line in statements[:-1]]
        return "\n".join(statements)

    def scripted(self, name):
        """EVAL and FUNCTION LOAD with random Lua (every loop bounded: a busy script is not what the
        fuzzer looks for), FCALL of what was loaded."""
        rng = self.rng
        keys = [rng.choice(KEYS) for _ in range(rng.choice([0, 1, 2]))]
        arguments = [self.argument([]) for _ in range(rng.choice([0, 1, 3]))]
        numkeys = str(len(keys)) if rng.random() < 0.9 else rng.choice(EXTREME_NUMBERS)
        if name in ("eval", "eval_ro"):
            return [name, self.lua_body(), numkeys] + keys + arguments
        if name == "function":
            if rng.random() < 0.3:
                return ["function", rng.choice(["list", "stats", "dump", "flush", "delete"])] + (["fz%d" % rng.randint(0, 3)] if rng.random() < 0.3 else [])
            library = "fz%d" % rng.randint(0, 3)
            body = "local function f(keys, args)\n%s\nend\nredis.register_function%s" % (
                self.lua_body(), rng.choice(["('%s', f)" % library, "{function_name='%s', callback=f, flags={'no-writes'}}" % library,
                                             "('%s', 1)" % library, "()"]))
            return ["function", "load", "replace", "#!lua name=%s\n%s" % (library, body)]
        return [name, "fz%d" % rng.randint(0, 3), numkeys] + keys + arguments

    def special(self, name, sub):
        """The excluded subcommands, with arguments that cannot lock the fuzzer out."""
        rng = self.rng
        if (name, sub) == ("config", "set"):
            words = ["config", "set"]
            for _ in range(rng.choice([1, 1, 1, 2])):
                words.append(rng.choice(CONFIG_PARAMETERS))
                words.append(rng.choice(CONFIG_VALUES) if rng.random() < 0.4 else self.number())
            return words
        if (name, sub) == ("acl", "setuser"):
            return ["acl", "setuser", rng.choice(ACL_USERS)] + [rng.choice(ACL_RULES) for _ in range(rng.randint(0, 4))]
        if (name, sub) == ("acl", "deluser"):
            return ["acl", "deluser"] + rng.sample(ACL_USERS, rng.randint(1, 2))
        if (name, sub) == ("client", "pause"):
            return ["client", "unpause"]
        if (name, sub) == ("client", "kill"):
            # Only clients of the default user: the watchdog runs as its own user and must stay connected.
            filters = ["USER", "default"]
            for _ in range(rng.randint(0, 3)):
                filters += [rng.choice(["ID", "TYPE", "ADDR", "LADDR", "SKIPME", "MAXAGE", "USER"]),
                            rng.choice(["normal", "pubsub", "master", "yes", "no", "127.0.0.1:1"] + EXTREME_NUMBERS)]
            rng.shuffle(filters)
            return ["client", "kill"] + filters
        return None

    # -- frames

    def valid_frame(self):
        words = self.command()
        return encode([w.encode("latin-1") if isinstance(w, str) else w for w in words])

    def mutated_frame(self):
        rng = self.rng
        data = bytearray(self.valid_frame())
        for _ in range(rng.randint(1, 4)):
            op = rng.random()
            if not data:
                break
            i = rng.randrange(len(data))
            if op < 0.3:
                data[i] = rng.getrandbits(8)
            elif op < 0.5:
                del data[i:i + rng.randint(1, 8)]
            elif op < 0.7:
                data[i:i] = rng.choice([b"\r\n", b"*", b"$", b"-1", b"99999999", b"\x00", b"\r", b"\n", b"0"])
            elif op < 0.85:
                data = data[:i]
            else:
                data[i:i] = data[:rng.randint(0, min(64, len(data)))]
        return bytes(data)

    def header_frame(self):
        rng = self.rng
        n = rng.choice(["-1", "0", "1", "2", "-2", "1024", "1048576", "1048577", "2147483647", "2147483648",
                        "9223372036854775807", "9223372036854775808", "-9223372036854775808", "abc", "",
                        "1 ", " 1", "+1", "0x10", "536870912", "536870913", "18446744073709551616"])
        pick = rng.random()
        if pick < 0.35:
            return b"*" + n.encode() + b"\r\n"
        if pick < 0.7:
            return b"*1\r\n$" + n.encode() + b"\r\n" + (b"ping\r\n" if rng.random() < 0.5 else b"")
        if pick < 0.85:
            return b"*2\r\n$4\r\nPING\r\n$" + n.encode() + b"\r\nx\r\n"
        return rng.choice([b"*1\r\n$4\r\nPING", b"*1\r\n$4\r\nPINGxx", b"*1\r\r\n", b"*1\n$4\nPING\n",
                           b"$4\r\nPING\r\n", b"*\r\n", b"*1\r\n:4\r\n", b"*1\r\n*1\r\n$4\r\nPING\r\n"])

    def inline_frame(self):
        rng = self.rng
        pieces = []
        for _ in range(rng.randint(0, 6)):
            pick = rng.random()
            if pick < 0.3:
                pieces.append(rng.choice(["PING", "SET", "GET", "ECHO", "INCR", "DEL", "HELLO", "CLIENT"]))
            elif pick < 0.5:
                pieces.append('"' + self.string().replace('"', '\\"') + '"')
            elif pick < 0.6:
                pieces.append(rng.choice(['"unbalanced', "'also", '"\\x4', '"\\xZZ"', '"a"b', "'a\\'b'",
                                          '""', "''", '"\\n\\r\\t\\b\\a"', '"\\x00\\xff"', "\\", '"a" "b']))
            elif pick < 0.8:
                pieces.append(self.number())
            else:
                pieces.append(rng.choice(KEYS) or "k")
        line = " ".join(pieces)
        if rng.random() < 0.02:
            line += "x" * rng.choice([65_535, 65_536, 70_000, 200_000])
        return line.encode("latin-1") + rng.choice([b"\r\n", b"\n", b"\r\n", b""])

    def resp3_frame(self):
        rng = self.rng
        return rng.choice([b"%1\r\n+a\r\n+b\r\n", b"~1\r\n$1\r\na\r\n", b"_\r\n", b",1.5\r\n", b"#t\r\n",
                           b"(123\r\n", b"=5\r\ntxt:a\r\n", b">1\r\n$1\r\na\r\n", b"|1\r\n+a\r\n+b\r\n"])

    def frame(self):
        pick = self.rng.random()
        if pick < 0.7:
            return self.valid_frame()
        if pick < 0.8:
            return self.mutated_frame()
        if pick < 0.87:
            return self.inline_frame()
        if pick < 0.95:
            return self.header_frame()
        return self.resp3_frame()


def abort(sock):
    """Closes with a reset instead of a FIN: no TIME_WAIT left on this side (tens of thousands of
    connections a minute would exhaust the ephemeral ports), and the server sees abrupt ends too."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


def process_rss(pid):
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class Watchdog(threading.Thread):
    """PINGs the server every 100 ms on its own connection; records the slowest answer and failures."""

    def __init__(self, port, password=None, user=None, limit=1.0):
        super().__init__(daemon=True)
        self.port, self.password, self.user, self.limit = port, password, user, limit
        self.stop_event = threading.Event()
        self.slowest = 0.0
        self.pings = 0
        self.failures = []

    def _connect(self):
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=self.limit)
        if self.password is not None:
            words = [b"AUTH"] + ([self.user.encode()] if self.user else []) + [self.password.encode()]
            sock.sendall(encode(words))
            if not sock.recv(64).startswith(b"+OK"):
                raise ConnectionError("watchdog AUTH refused")
        return sock

    def run(self):
        sock = None
        while not self.stop_event.wait(0.1):
            start = time.monotonic()
            deadline = start + self.limit
            answered = False
            # A fuzzing client may kill this connection (CLIENT KILL): reconnect, within the same second.
            while not answered and time.monotonic() < deadline:
                try:
                    if sock is None:
                        sock = self._connect()
                    sock.settimeout(max(0.01, deadline - time.monotonic()))
                    sock.sendall(b"PING\r\n")
                    reply = b""
                    while not reply.endswith(b"\r\n"):
                        chunk = sock.recv(64)
                        if not chunk:
                            raise ConnectionError("closed")
                        reply += chunk
                    answered = reply.startswith(b"+PONG")
                    if not answered:
                        raise ConnectionError(f"unexpected reply {reply!r}")
                except (OSError, ConnectionError):
                    if sock is not None:
                        abort(sock)
                    sock = None
                    time.sleep(0.01)
            elapsed = time.monotonic() - start
            self.pings += 1
            self.slowest = max(self.slowest, elapsed)
            if not answered:
                self.failures.append((start, f"no PONG within {self.limit} s at {time.strftime('%H:%M:%S')}"))
        if sock is not None:
            sock.close()

    def stop(self):
        self.stop_event.set()
        self.join()


class FuzzClient:
    """One connection that sends frames in bursts, reads (and discards) whatever comes back, and
    reconnects when the server closes it (protocol errors, CLIENT KILL, QUIT)."""

    def __init__(self, port, generator, password=None):
        self.port, self.gen, self.password = port, generator, password
        self.sock = None
        self.frames = 0
        self.reconnects = 0
        self.received = 0
        # The last bursts sent, (monotonic time, first bytes), to name the culprit of a stall.
        self.recent = collections.deque(maxlen=64)

    def connect(self):
        self.close()
        self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        self.sock.setblocking(False)
        self.reconnects += 1
        hello = []
        if self.gen.rng.random() < 0.3:
            hello.append(encode([b"HELLO", b"3"]))
        if self.password is not None:
            hello.insert(0, encode([b"AUTH", self.password.encode()]))
        self.pending = b"".join(hello)

    def close(self):
        if self.sock is not None:
            abort(self.sock)
            self.sock = None

    def burst(self, frames):
        """Sends `frames` frames (as one write where the socket takes it), draining replies meanwhile."""
        if self.sock is None:
            self.connect()
        rng = self.gen.rng
        data = self.pending + b"".join(self.gen.frame() for _ in range(frames))
        self.pending = b""
        self.recent.append((time.monotonic(), data[:4000]))
        self.frames += frames
        # Sometimes stop in the middle of the data and hang up: the server must drop the partial frame.
        hang_up = rng.random() < 0.05
        if hang_up:
            data = data[:rng.randint(0, len(data))]
        deadline = time.monotonic() + 2.0
        while data and time.monotonic() < deadline:
            try:
                sent = self.sock.send(data)
                data = data[sent:]
            except BlockingIOError:
                if not self.drain(0.01):
                    return
            except OSError:
                self.close()
                return
            if not self.drain(0):
                return
        # A client blocked (BLPOP, a partial frame the server waits for, a paused reader): move on.
        if data or hang_up or rng.random() < 0.1:
            self.close()
            return
        self.drain(0.002)

    def drain(self, wait):
        """Reads what is there; False when the connection is gone."""
        if self.sock is None:
            return False
        if wait:
            sel = selectors.DefaultSelector()
            sel.register(self.sock, selectors.EVENT_READ)
            sel.select(wait)
            sel.close()
        while True:
            try:
                chunk = self.sock.recv(1 << 20)
            except BlockingIOError:
                return True
            except OSError as error:
                if error.errno in (errno.ECONNRESET, errno.EPIPE):
                    self.close()
                    return False
                raise
            if not chunk:
                self.close()
                return False
            self.received += len(chunk)


def run(port, pid, seed, frames=None, seconds=None, connections=8, password=None, progress=None):
    """Fuzzes the server on `port` (process `pid`) until `frames` frames were sent or `seconds` passed.
    Returns a dict: frames, connections opened, watchdog figures, RSS before and at the peak, and
    `alive` (the process still runs)."""
    from support import resp
    table = CommandTable.fetch(port, password)
    # The watchdog runs as its own ACL user, out of reach of the fuzzer's CLIENT KILL and ACL SETUSER.
    setup = resp.Connection(port)
    if password:
        setup.call("AUTH", password)
    reply = setup.call("ACL", "SETUSER", "fuzz-watchdog", "reset", "on", ">watchdog", "+ping")
    setup.close()
    if reply == "OK":
        watchdog = Watchdog(port, "watchdog", "fuzz-watchdog")
    else:
        watchdog = Watchdog(port, password)
    watchdog.start()
    rss_start = process_rss(pid)
    rss_peak = rss_start
    clients = [FuzzClient(port, FrameGenerator(table, seed * 1000 + i), password) for i in range(connections)]
    rng = random.Random(seed)

    def suspects_around(failed_at):
        """The bursts sent shortly before `failed_at` (a watchdog PING that went unanswered, or the end)."""
        return [data for client in clients
                for data in [data for at, data in client.recent if failed_at - 1.5 <= at <= failed_at + 0.2][-4:]]

    early_suspects = None
    started = time.monotonic()
    sent = 0
    last_report = started
    alive = True
    try:
        while True:
            if frames is not None and sent >= frames:
                break
            if seconds is not None and time.monotonic() - started >= seconds:
                break
            client = rng.choice(clients)
            count = rng.choice([1, 2, 8, 32, 64, 128])
            try:
                client.burst(count)
            except OSError:
                # Refused: the server is gone (reported below), or out of descriptors for a moment.
                if not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z":
                    alive = False
                    break
                time.sleep(0.01)
            sent += count
            if watchdog.failures and early_suspects is None:
                # Named now: by the end of the run the clients' recent bursts no longer reach back to it.
                early_suspects = suspects_around(watchdog.failures[0][0])
            now = time.monotonic()
            if now - last_report >= 1.0:
                last_report = now
                if not os.path.exists(f"/proc/{pid}"):
                    alive = False
                    break
                rss_peak = max(rss_peak, process_rss(pid))
                # Configuration the fuzzer changed is put back from time to time, so that a low maxmemory or
                # a tiny query-buffer limit does not hide the rest of the command space for the whole run.
                try:
                    admin = resp.Connection(port, timeout=2)
                    if password:
                        admin.call("AUTH", password)
                    admin.call("CONFIG", "SET", "maxmemory", "0", "client-query-buffer-limit", "1gb",
                               "proto-max-bulk-len", "512mb", "timeout", "0", "appendfsync", "everysec")
                    admin.close()
                except (OSError, ConnectionError):
                    pass
                if progress:
                    progress(sent, now - started, watchdog.slowest, rss_peak)
    finally:
        for client in clients:
            client.close()
        watchdog.stop()
    alive = alive and os.path.exists(f"/proc/{pid}") and open(f"/proc/{pid}/stat").read().split()[2] != "Z"
    suspects = early_suspects or []
    if not suspects:
        for failed_at in [at for at, _ in watchdog.failures[:3]] or ([] if alive else [time.monotonic()]):
            suspects += suspects_around(failed_at)
    return {
        "suspects": suspects,
        "frames": sent,
        "seconds": time.monotonic() - started,
        "connections": sum(c.reconnects for c in clients),
        "watchdog_pings": watchdog.pings,
        "watchdog_slowest": watchdog.slowest,
        "watchdog_failures": [text for _, text in watchdog.failures],
        "rss_start": rss_start,
        "rss_peak": max(rss_peak, process_rss(pid)) if alive else rss_peak,
        "alive": alive,
    }


def settle(port, pid, password=None, seconds=8.0):
    """After a run: FLUSHALL, then the lowest RSS seen over `seconds` (the server gives free memory back
    to the system once a second)."""
    from support import resp
    conn = resp.Connection(port)
    if password:
        conn.call("AUTH", password)
    conn.call("CONFIG", "SET", "maxmemory", "0")
    conn.call("FLUSHALL")
    conn.close()
    lowest = process_rss(pid)
    deadline = time.time() + seconds
    while time.time() < deadline:
        time.sleep(0.5)
        lowest = min(lowest, process_rss(pid))
    return lowest
