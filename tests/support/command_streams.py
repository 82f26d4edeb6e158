"""Seeded random command streams over hashes, lists, sets, sorted sets, bitmaps, HyperLogLogs, GEO and streams (plus
cross-type key commands), shared by the differential test and the persistence tests."""

TYPED_KEYS = {
    "list": [b"l0", b"l1", b"l2"],
    "hash": [b"h0", b"h1"],
    "set": [b"s0", b"s1", b"s2"],
    "zset": [b"z0", b"z1", b"z2"],
    "bitmap": [b"b0", b"b1"],
    "hll": [b"p0", b"p1", b"p2"],
    "geo": [b"g0", b"g1"],
    "stream": [b"x0", b"x1", b"x2"],
}
STREAM_GROUPS = [b"ga", b"gb", b"gc"]
STREAM_CONSUMERS = [b"alice", b"bob", b"carol"]
SHARED_KEYS = [b"x", b"str", b"missing"]
MEMBERS = [b"a", b"b", b"c", b"d", b"e", b"f", b"1", b"2", b"10", b"-3", b"007", b"", b"\x00\xff", b"m" * 70]


class Generator:
    def __init__(self, rng):
        self.rng = rng
        self.clock = 1  # stream IDs: mostly increasing milliseconds, so that most XADDs succeed

    def key(self, kind):
        if self.rng.random() < 0.08:
            return self.rng.choice(SHARED_KEYS + sum(TYPED_KEYS.values(), []))
        return self.rng.choice(TYPED_KEYS[kind])

    def member(self):
        return self.rng.choice(MEMBERS)

    def members(self, low=1, high=4):
        return [self.member() for _ in range(self.rng.randint(low, high))]

    def integer(self):
        return self.rng.choice([b"0", b"1", b"-1", b"2", b"-2", b"3", b"5", b"-5", b"100", b"-100", b"abc", b"",
                                b"9223372036854775807", b"-9223372036854775808", b"1.5"])

    def count(self):
        return self.rng.choice([b"0", b"1", b"2", b"3", b"10", b"-1", b"-3", b"abc"])

    def score(self):
        r = self.rng.random()
        if r < 0.5:
            return str(self.rng.randint(-5, 5)).encode()
        if r < 0.7:
            return repr(self.rng.uniform(-10, 10)).encode()
        return self.rng.choice([b"inf", b"-inf", b"+inf", b"1e3", b"abc", b"nan", b"", b" 1", b"0.1", b"1e400",
                                b"-0", b"0x10", b"3.0"])

    def score_bound(self):
        r = self.rng.random()
        if r < 0.4:
            return str(self.rng.randint(-6, 6)).encode()
        if r < 0.6:
            return b"(" + str(self.rng.randint(-6, 6)).encode()
        return self.rng.choice([b"-inf", b"+inf", b"inf", b"(inf", b"(-inf", b"abc", b"(", b"", b"nan", b"1.5",
                                b"(2.5", b"[1"])

    def lex_bound(self):
        return self.rng.choice([b"-", b"+", b"[a", b"(a", b"[c", b"(c", b"[f", b"(b", b"[", b"(", b"a", b"[1",
                                b"+x", b"-x", b"[m"])

    def hash_command(self):
        rng, k = self.rng, lambda: self.key("hash")
        field_values = lambda: sum(([self.member(), self.value()] for _ in range(rng.randint(1, 3))), [])
        return rng.choice([
            lambda: [b"HSET", k()] + field_values() + rng.choice([[], [], [b"odd"]]),
            lambda: [b"HMSET", k()] + field_values(),
            lambda: [b"HSETNX", k(), self.member(), self.value()],
            lambda: [b"HGET", k(), self.member()],
            lambda: [b"HMGET", k()] + self.members(),
            lambda: [b"HGETALL", k()],
            lambda: [b"HKEYS", k()],
            lambda: [b"HVALS", k()],
            lambda: [b"HDEL", k()] + self.members(),
            lambda: [b"HEXISTS", k(), self.member()],
            lambda: [b"HLEN", k()],
            lambda: [b"HSTRLEN", k(), self.member()],
            lambda: [b"HINCRBY", k(), self.member(), self.integer()],
            lambda: [b"HINCRBYFLOAT", k(), self.member(), self.score()],
            lambda: [b"HRANDFIELD", k()] + rng.choice([[], [self.count()], [self.count(), b"WITHVALUES"],
                                                       [b"1", b"WITHVALUES", b"x"], [b"2", b"bad"]]),
            lambda: [b"HSCAN", k(), rng.choice([b"0", b"x"])] + rng.choice([[], [b"MATCH", b"*a*"], [b"COUNT", b"5"],
                                                                          [b"COUNT", b"0"], [b"FOO"]]),
        ])()

    def value(self):
        return self.rng.choice([b"v", b"1", b"-5", b"2.5", b"abc", b"", b"9223372036854775807", b"x" * 70])

    def list_command(self):
        rng, k = self.rng, lambda: self.key("list")
        end = lambda: rng.choice([b"LEFT", b"RIGHT", b"left", b"UP"])
        return rng.choice([
            lambda: [rng.choice([b"LPUSH", b"RPUSH"]), k()] + self.members(),
            lambda: [rng.choice([b"LPUSHX", b"RPUSHX"]), k()] + self.members(),
            lambda: [rng.choice([b"LPOP", b"RPOP"]), k()] + rng.choice([[], [], [self.count()], [b"1", b"2"]]),
            lambda: [b"LLEN", k()],
            lambda: [b"LRANGE", k(), self.integer(), self.integer()],
            lambda: [b"LINDEX", k(), self.integer()],
            lambda: [b"LSET", k(), self.integer(), self.member()],
            lambda: [b"LINSERT", k(), rng.choice([b"BEFORE", b"AFTER", b"MIDDLE"]), self.member(), self.member()],
            lambda: [b"LREM", k(), self.integer(), self.member()],
            lambda: [b"LTRIM", k(), self.integer(), self.integer()],
            lambda: [b"LPOS", k(), self.member()] + rng.choice([[], [b"RANK", self.integer()], [b"COUNT", self.count()],
                                                                [b"MAXLEN", self.count()], [b"RANK", b"-1", b"COUNT", b"0"],
                                                                [b"RANK", b"0"], [b"FOO"]]),
            lambda: [b"LMOVE", k(), k(), end(), end()],
            lambda: [b"RPOPLPUSH", k(), k()],
            lambda: [b"LMPOP", rng.choice([b"1", b"2", b"0", b"x"]), k(), k(), end()] + rng.choice([[], [b"COUNT", self.count()], [b"COUNT"]]),
        ])()

    def set_command(self):
        rng, k = self.rng, lambda: self.key("set")
        keys = lambda: [k() for _ in range(rng.randint(1, 3))]
        return rng.choice([
            lambda: [b"SADD", k()] + self.members(),
            lambda: [b"SADD", k()] + [str(rng.randint(-20, 20)).encode() for _ in range(rng.randint(1, 4))],
            lambda: [b"SREM", k()] + self.members(),
            lambda: [b"SMEMBERS", k()],
            lambda: [b"SISMEMBER", k(), self.member()],
            lambda: [b"SMISMEMBER", k()] + self.members(),
            lambda: [b"SCARD", k()],
            lambda: [b"SPOP", k(), rng.choice([b"100", b"-1", b"0", b"x"])],
            lambda: [b"SRANDMEMBER", k()] + rng.choice([[], [self.count()], [b"1", b"2"]]),
            lambda: [b"SMOVE", k(), k(), self.member()],
            lambda: [rng.choice([b"SINTER", b"SUNION", b"SDIFF"])] + keys(),
            lambda: [rng.choice([b"SINTERSTORE", b"SUNIONSTORE", b"SDIFFSTORE"]), k()] + keys(),
            lambda: [b"SINTERCARD", rng.choice([b"1", b"2", b"0", b"-1", b"5"]), k(), k()] + rng.choice([[], [b"LIMIT", self.count()], [b"FOO"]]),
            lambda: [b"SSCAN", k(), b"0"] + rng.choice([[], [b"MATCH", b"1*"], [b"COUNT", b"2"]]),
        ])()

    def zset_command(self):
        rng, k = self.rng, lambda: self.key("zset")
        # Member (lex) ranges are only specified when all scores are equal: they use their own key.
        lk = lambda: b"zlex"
        pairs = lambda: sum(([self.score(), self.member()] for _ in range(rng.randint(1, 3))), [])
        flags = lambda: [rng.choice([b"NX", b"XX", b"GT", b"LT", b"CH", b"INCR", b"ch"]) for _ in range(rng.choice([0, 0, 1, 2]))]
        nums = lambda: rng.choice([b"1", b"2", b"3", b"0", b"-1", b"x", b"9"])
        algebra_opts = lambda: rng.choice([[], [], [b"WEIGHTS", b"2", b"0.5"], [b"WEIGHTS", b"inf", b"-inf"],
                                           [b"AGGREGATE", rng.choice([b"SUM", b"MIN", b"MAX", b"AVG"])],
                                           [b"WEIGHTS", b"1"], [b"WITHSCORES"], [b"WEIGHTS", b"x", b"1"]])
        # BYLEX only on zlex: on a skiplist with mixed scores its result follows the random levels of the list.
        range_opts = lambda lex=False: [rng.choice([b"WITHSCORES", b"BYSCORE", b"REV", b"LIMIT"] + [b"BYLEX"] * lex)
                                        for _ in range(rng.choice([0, 1, 2]))] + \
            rng.choice([[], [], [b"LIMIT", self.integer(), self.integer()]])
        return rng.choice([
            lambda: [b"ZADD", k()] + flags() + pairs(),
            lambda: [b"ZADD", k()] + [str(rng.randint(0, 3)).encode(), self.member(), b"1", self.member()],
            lambda: [b"ZINCRBY", k(), self.score(), self.member()],
            lambda: [b"ZADD", b"zlex"] + sum(([b"0", self.member()] for _ in range(rng.randint(1, 4))), []),
            lambda: [b"ZREM", k()] + self.members(),
            lambda: [b"ZSCORE", k(), self.member()],
            lambda: [b"ZMSCORE", k()] + self.members(),
            lambda: [b"ZCARD", k()],
            lambda: [rng.choice([b"ZRANK", b"ZREVRANK"]), k(), self.member()],
            lambda: [b"ZCOUNT", k(), self.score_bound(), self.score_bound()],
            lambda: [b"ZLEXCOUNT", lk(), self.lex_bound(), self.lex_bound()],
            lambda: [b"ZRANGE", k(), self.integer(), self.integer()] + range_opts(),
            lambda: [b"ZRANGE", k(), self.score_bound(), self.score_bound(), b"BYSCORE"] + range_opts(),
            lambda: [b"ZRANGE", lk(), self.lex_bound(), self.lex_bound(), b"BYLEX"] + range_opts(lex=True),
            lambda: [b"ZRANGESTORE", k(), lk(), self.lex_bound(), self.lex_bound(), b"BYLEX"] + range_opts(lex=True),
            lambda: [b"ZRANGESTORE", k(), k(), self.score_bound(), self.score_bound()] + range_opts(),
            lambda: [b"ZREVRANGE", k(), self.integer(), self.integer()] + rng.choice([[], [b"WITHSCORES"], [b"LIMIT", b"0", b"1"]]),
            lambda: [rng.choice([b"ZRANGEBYSCORE", b"ZREVRANGEBYSCORE"]), k(), self.score_bound(), self.score_bound()] +
                    rng.choice([[], [b"WITHSCORES"], [b"LIMIT", self.integer(), self.integer()], [b"REV"]]),
            lambda: [rng.choice([b"ZRANGEBYLEX", b"ZREVRANGEBYLEX"]), lk(), self.lex_bound(), self.lex_bound()] +
                    rng.choice([[], [b"LIMIT", self.integer(), self.integer()], [b"WITHSCORES"]]),
            lambda: [b"ZREMRANGEBYRANK", k(), self.integer(), self.integer()],
            lambda: [b"ZREMRANGEBYSCORE", k(), self.score_bound(), self.score_bound()],
            lambda: [b"ZREMRANGEBYLEX", lk(), self.lex_bound(), self.lex_bound()],
            lambda: [rng.choice([b"ZPOPMIN", b"ZPOPMAX"]), k()] + rng.choice([[], [self.count()], [b"1", b"2"]]),
            lambda: [b"ZMPOP", nums(), k(), k(), rng.choice([b"MIN", b"MAX", b"max", b"LEFT"])] + rng.choice([[], [b"COUNT", self.count()]]),
            lambda: [b"ZRANDMEMBER", k()] + rng.choice([[], [self.count()], [self.count(), b"WITHSCORES"], [b"1", b"x"]]),
            lambda: [rng.choice([b"ZUNION", b"ZINTER", b"ZDIFF"]), nums(), rng.choice(TYPED_KEYS["zset"] + TYPED_KEYS["set"]), k()] + algebra_opts(),
            lambda: [rng.choice([b"ZUNIONSTORE", b"ZINTERSTORE", b"ZDIFFSTORE"]), k(), nums(), k(),
                     rng.choice(TYPED_KEYS["zset"] + TYPED_KEYS["set"])] + algebra_opts(),
            lambda: [b"ZINTERCARD", nums(), k(), k()] + rng.choice([[], [b"LIMIT", self.count()]]),
            lambda: [b"ZSCAN", k(), b"0"] + rng.choice([[], [b"MATCH", b"*"], [b"MATCH", b"a*"]]),
        ])()

    def bitmap_command(self):
        rng, k = self.rng, lambda: self.key("bitmap")
        offset = lambda: rng.choice([b"0", b"1", b"7", b"8", b"15", b"63", b"100", b"-1", b"abc", b"", b"4294967296", b"4096",
                                     b"#1"])
        index = lambda: rng.choice([b"0", b"1", b"2", b"-1", b"-2", b"5", b"9", b"-100", b"100", b"abc"])
        unit = lambda: rng.choice([[], [], [b"BIT"], [b"BYTE"], [b"bit"], [b"WORD"]])
        field_type = lambda: rng.choice([b"u1", b"u8", b"i8", b"i5", b"u63", b"i64", b"u64", b"i0", b"x8", b"i65", b"u"])
        field_offset = lambda: rng.choice([b"0", b"3", b"8", b"13", b"#0", b"#2", b"#-1", b"-1", b"abc", b"100", b"#"])
        field_op = lambda: rng.choice([
            [b"GET", field_type(), field_offset()],
            [b"SET", field_type(), field_offset(), self.integer()],
            [b"INCRBY", field_type(), field_offset(), self.integer()],
            [b"OVERFLOW", rng.choice([b"WRAP", b"SAT", b"FAIL", b"fail", b"BAD"])],
            [rng.choice([b"GET", b"SET", b"FOO"])],
        ])
        return rng.choice([
            lambda: [b"SETBIT", k(), offset(), rng.choice([b"0", b"1", b"1", b"2", b"-1", b"x"])],
            lambda: [b"GETBIT", k(), offset()],
            lambda: [b"BITCOUNT", k()] + rng.choice([[], [index(), index()] + unit(), [index()]]),
            lambda: [b"BITPOS", k(), rng.choice([b"0", b"1", b"1", b"2"])] + rng.choice([[], [index()], [index(), index()] + unit()]),
            lambda: [b"BITOP", rng.choice([b"AND", b"OR", b"XOR", b"NOT", b"not", b"NAND"]), k()]
                    + [k() for _ in range(rng.randint(1, 3))],
            lambda: [b"BITFIELD", k()] + sum((field_op() for _ in range(rng.randint(0, 4))), []),
            lambda: [b"BITFIELD_RO", k()] + sum(([b"GET", field_type(), field_offset()] for _ in range(rng.randint(0, 2))), [])
                    + rng.choice([[], [], [b"INCRBY", b"u8", b"0", b"1"]]),
            lambda: [b"SETRANGE", k(), rng.choice([b"0", b"2", b"9"]), self.member()],
            lambda: [b"APPEND", k(), self.member()],
            lambda: [b"GET", k()],
            lambda: [b"LCS", k(), k()] + rng.choice([[], [b"LEN"], [b"IDX"], [b"IDX", b"WITHMATCHLEN"], [b"LEN", b"IDX"],
                                                     [b"IDX", b"MINMATCHLEN", rng.choice([b"0", b"2", b"-1", b"x"])], [b"FOO"]]),
        ])()

    def hll_command(self):
        rng, k = self.rng, lambda: self.key("hll")
        elements = lambda: [str(rng.randint(0, rng.choice([10, 1000, 100000]))).encode()
                            for _ in range(rng.randint(0, rng.choice([2, 5, 60])))]
        return rng.choice([
            lambda: [b"PFADD", k()] + elements(),
            lambda: [b"PFADD", k()] + elements(),
            lambda: [b"PFCOUNT"] + [k() for _ in range(rng.randint(1, 3))],
            lambda: [b"PFMERGE", k()] + [k() for _ in range(rng.randint(0, 2))],
            lambda: [b"PFDEBUG", rng.choice([b"ENCODING", b"DECODE", b"TODENSE", b"FOO"]), k()],
            lambda: [b"GET", k()],
        ])()

    def coordinate(self, limit):
        """A longitude (limit 180) or latitude (limit 85.05112878) near a few places, or an edge case."""
        rng = self.rng
        r = rng.random()
        if r < 0.6:
            center = rng.choice([13.4, 2.35, -74.0, 151.2]) if limit == 180 else rng.choice([52.5, 48.85, 40.7, -33.9])
            return repr(center + rng.uniform(-0.5, 0.5)).encode()
        if r < 0.85:
            return repr(rng.uniform(-limit, limit)).encode()
        return rng.choice([b"0", b"180", b"-180", b"85.05112878", b"-85.05112878", b"85.05112879", b"180.0000001",
                           b"abc", b"inf", b"", b"1e1", b"-0"])

    def geo_command(self):
        rng = self.rng
        k = lambda: self.key("geo") if rng.random() < 0.8 else self.key("zset")
        lon, lat = (lambda: self.coordinate(180)), (lambda: self.coordinate(85.05112878))
        unit = lambda: rng.choice([b"m", b"km", b"KM", b"mi", b"ft", b"yd"])
        size = lambda: rng.choice([b"0", b"100", b"5000", b"50", b"200", b"1e4", b"-1", b"x", b"inf"])
        shape = lambda: rng.choice([[b"BYRADIUS", size(), unit()], [b"BYBOX", size(), size(), unit()]])
        origin = lambda: rng.choice([[b"FROMMEMBER", self.member()], [b"FROMLONLAT", lon(), lat()]])

        def options(store):
            words = []
            for _ in range(rng.randint(0, 3)):
                words += rng.choice([[b"ASC"], [b"DESC"], [b"COUNT", self.count()], [b"COUNT", b"2", b"ANY"], [b"ANY"]]
                                    + ([[b"WITHDIST"], [b"WITHCOORD"], [b"WITHHASH"]] if not store or rng.random() < 0.1 else []))
            return words

        def geoadd():
            words = [b"GEOADD", k()] + rng.choice([[], [], [b"NX"], [b"XX"], [b"CH"], [b"XX", b"CH"], [b"NX", b"XX"]])
            for _ in range(rng.randint(1, 4)):
                words += [lon(), lat(), self.member()]
            if rng.random() < 0.05:
                words.pop()
            return words

        return rng.choice([
            geoadd, geoadd, geoadd,
            lambda: [b"GEOPOS", k()] + self.members(),
            lambda: [b"GEOHASH", k()] + self.members(),
            lambda: [b"GEODIST", k(), self.member(), self.member()] + rng.choice([[], [unit()], [b"km", b"x"]]),
            lambda: [b"GEOSEARCH", k()] + origin() + shape() + options(False),
            lambda: [b"GEOSEARCHSTORE", k(), k()] + origin() + shape() + options(True) + rng.choice([[], [b"STOREDIST"]]),
            lambda: [rng.choice([b"GEORADIUS", b"GEORADIUS_RO"]), k(), lon(), lat(), size(), unit()] + options(False),
            lambda: [rng.choice([b"GEORADIUSBYMEMBER", b"GEORADIUSBYMEMBER_RO"]), k(), self.member(), size(), unit()]
                    + options(False),
            lambda: [b"GEORADIUS", k(), lon(), lat(), size(), unit()] + options(True)
                    + [rng.choice([b"STORE", b"STOREDIST"]), k()],
            lambda: [b"ZRANGE", k(), b"0", b"-1", b"WITHSCORES"],
        ])()

    def stream_id(self, bound=False):
        """An entry ID: mostly the next milliseconds (explicit or `ms-*`), sometimes an old or odd one."""
        rng = self.rng
        r = rng.random()
        if r < 0.55:
            self.clock += rng.choice([0, 1, 1, 2, 5])
            return b"%d-%d" % (self.clock, rng.randint(0, 3)) if bound or rng.random() < 0.7 else b"%d-*" % self.clock
        if r < 0.8:
            return b"%d-%d" % (rng.randint(0, self.clock + 1), rng.randint(0, 2))
        if r < 0.9:
            return str(rng.randint(0, self.clock + 1)).encode()
        return rng.choice([b"0-0", b"0", b"-", b"+", b"0-1", b"x", b"1-x", b"18446744073709551615-18446744073709551615",
                           b"18446744073709551616", b"-1", b" 5", b"+5-1", b"", b"5-", b"(3", b"3-*"])

    def stream_bound(self):
        rng = self.rng
        r = rng.random()
        if r < 0.5:
            return b"%d-%d" % (rng.randint(0, self.clock + 1), rng.randint(0, 2))
        if r < 0.7:
            return b"(" + b"%d-%d" % (rng.randint(0, self.clock + 1), rng.randint(0, 2))
        if r < 0.85:
            return str(rng.randint(0, self.clock + 1)).encode()
        return rng.choice([b"-", b"+", b"(-", b"(+", b"(0-0", b"(18446744073709551615-18446744073709551615", b"x",
                           b"(", b"0", b"(5"])

    def stream_command(self):
        """Stream commands whose replies do not depend on the clock (explicit IDs, min-idle 0, no BLOCK, no
        idle times): XADD with trimming, ranges, XDEL, XTRIM, XSETID, groups, reads, claims, XINFO GROUPS."""
        rng = self.rng
        k = lambda: self.key("stream")
        group = lambda: rng.choice(STREAM_GROUPS + [b"nogroup"]) if rng.random() < 0.1 else rng.choice(STREAM_GROUPS)
        consumer = lambda: rng.choice(STREAM_CONSUMERS)
        fields = lambda: rng.choice([[b"f", self.member()], [b"a", b"1", b"b", b"2"], [b"a", self.member(), b"b", self.member()],
                                     [self.member(), self.member()], [b"f"]])
        count = lambda: rng.choice([[], [], [b"COUNT", rng.choice([b"1", b"2", b"3", b"0", b"-1", b"x"])]])

        def trim():
            strategy = rng.choice([b"MAXLEN", b"MINID", b"maxlen"])
            operator = rng.choice([[], [b"="], [b"~"], [b"~"]])
            threshold = (rng.choice([b"0", b"1", b"2", b"5", b"10", b"-1", b"x"]) if strategy != b"MINID"
                         else self.stream_bound() if rng.random() < 0.3 else self.stream_id(bound=True))
            limit = rng.choice([[], [], [b"LIMIT", rng.choice([b"0", b"1", b"5", b"-1"])]])
            return [strategy] + operator + [threshold] + limit

        def xadd():
            words = [b"XADD", k()]
            if rng.random() < 0.1:
                words.append(b"NOMKSTREAM")
            if rng.random() < 0.25:
                words += trim()
            return words + [self.stream_id()] + fields()

        def ids(n=3):
            return [self.stream_id(bound=True) if rng.random() < 0.3 else b"%d-%d" % (rng.randint(0, self.clock), rng.randint(0, 3))
                    for _ in range(rng.randint(1, n))]

        def xreadgroup():
            words = [b"XREADGROUP", b"GROUP", group(), consumer()] + count()
            if rng.random() < 0.2:
                words.append(b"NOACK")
            keys = rng.sample(TYPED_KEYS["stream"], rng.randint(1, 2))
            return words + [b"STREAMS"] + keys + [rng.choice([b">", b">", b"0", self.stream_bound()]) for _ in keys]

        return rng.choice([
            xadd, xadd, xadd, xadd, xadd,
            lambda: [b"XLEN", k()],
            lambda: [b"XRANGE", k(), self.stream_bound(), self.stream_bound()] + count(),
            lambda: [b"XRANGE", k(), b"-", b"+"],
            lambda: [b"XREVRANGE", k(), self.stream_bound(), self.stream_bound()] + count(),
            lambda: [b"XDEL", k()] + ids(),
            lambda: [b"XTRIM", k()] + trim(),
            lambda: [b"XSETID", k(), self.stream_id(bound=True)] + rng.choice([[], [b"ENTRIESADDED", self.count()],
                                                                               [b"MAXDELETEDID", self.stream_bound()]]),
            lambda: [b"XGROUP", b"CREATE", k(), group(), rng.choice([b"$", b"0", self.stream_bound()])]
                    + rng.choice([[], [b"MKSTREAM"], [b"ENTRIESREAD", self.count()]]),
            lambda: [b"XGROUP", b"SETID", k(), group(), rng.choice([b"$", b"0", self.stream_bound()])]
                    + rng.choice([[], [b"ENTRIESREAD", self.count()]]),
            lambda: [b"XGROUP", b"DESTROY", k(), group()],
            lambda: [b"XGROUP", b"CREATECONSUMER", k(), group(), consumer()],
            lambda: [b"XGROUP", b"DELCONSUMER", k(), group(), consumer()],
            xreadgroup, xreadgroup, xreadgroup,
            lambda: [b"XREAD"] + count() + [b"STREAMS", k(), rng.choice([b"0", b"$", self.stream_bound()])],
            lambda: [b"XACK", k(), group()] + ids(),
            lambda: [b"XPENDING", k(), group()],
            lambda: [b"XCLAIM", k(), group(), consumer(), b"0"] + ids()
                    + rng.choice([[], [b"JUSTID"], [b"FORCE"], [b"RETRYCOUNT", b"7"], [b"LASTID", self.stream_bound()], [b"BOGUS"]]),
            lambda: [b"XAUTOCLAIM", k(), group(), consumer(), b"0", self.stream_bound()]
                    + rng.choice([[], [b"COUNT", rng.choice([b"1", b"2", b"0", b"x"])], [b"JUSTID"]]),
            lambda: [b"XINFO", b"GROUPS", k()],
        ])()

    def command(self):
        rng = self.rng
        r = rng.random()
        if r < 0.16:
            return self.hash_command()
        if r < 0.32:
            return self.list_command()
        if r < 0.46:
            return self.set_command()
        if r < 0.69:
            return self.zset_command()
        if r < 0.79:
            return self.bitmap_command()
        if r < 0.83:
            return self.hll_command()
        if r < 0.87:
            return self.geo_command()
        if r < 0.96:
            return self.stream_command()
        all_keys = SHARED_KEYS + sum(TYPED_KEYS.values(), [])
        return rng.choice([
            lambda: [b"TYPE", rng.choice(all_keys)],
            lambda: [b"OBJECT", b"ENCODING", rng.choice(all_keys)],
            lambda: [b"DEL", rng.choice(all_keys)],
            lambda: [b"SET", rng.choice(all_keys), b"1"],
            lambda: [b"EXISTS", rng.choice(all_keys)],
            lambda: [b"RENAME", rng.choice(all_keys), rng.choice(all_keys)],
            lambda: [b"COPY", rng.choice(all_keys), rng.choice(all_keys), b"REPLACE"],
            lambda: [b"EXPIRE", rng.choice(all_keys), b"100"],
            lambda: [b"DBSIZE"],
            # Transactions: queued replies, EXEC results, WATCH aborts and errors compare like the rest.
            lambda: [b"MULTI"],
            lambda: [b"EXEC"],
            lambda: [b"EXEC"],
            lambda: [b"DISCARD"],
            lambda: [b"WATCH", rng.choice(all_keys)],
            lambda: [b"UNWATCH"],
        ])()
