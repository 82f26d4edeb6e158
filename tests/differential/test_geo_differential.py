"""GEO commands against redis-server 7.0: scores, positions, hashes and distances bit for bit, every search
form (GEOSEARCH/GEOSEARCHSTORE, GEORADIUS*, radius and box, COUNT [ANY], ASC/DESC, WITH*) on a
100,000-point data set and on dense clusters, option and error handling in RESP2 and RESP3, positions of
scores that were never geohashes. Replay a random test with DIFF_SEED=<seed>."""
import os
import random

import pytest

from support import resp

UNITS = [b"m", b"km", b"mi", b"ft"]


def connections(pair, protocol=2):
    conns = [resp.Connection(server.port, strict_nulls=True) for server in pair]
    for conn in conns:
        assert conn.call(b"FLUSHALL") == "OK"
        if protocol == 3:
            assert isinstance(conn.call(b"HELLO", b"3"), dict)
    return conns


def compare(conns, commands, seed=None):
    got, want = (conn.pipeline(commands) for conn in conns)
    for command, a, b in zip(commands, got, want):
        assert a == b, f"seed={seed} {command!r}:\n nova  {a!r:.600}\n redis {b!r:.600}"
    return got


def world_points(rng, count):
    """Points all over the index, a fifth of them inside a few dense cities, a few on the limits."""
    points = []
    cities = [(13.40, 52.52), (2.35, 48.86), (-74.0, 40.7), (151.2, -33.9), (139.7, 35.7), (-0.1, 51.5)]
    for n in range(count):
        r = rng.random()
        if r < 0.2:
            lon, lat = rng.choice(cities)
            point = (lon + rng.gauss(0, 0.3), lat + rng.gauss(0, 0.2))
        elif r < 0.995:
            point = (rng.uniform(-180, 180), rng.uniform(-85.05112878, 85.05112878))
        else:
            point = (rng.choice([-180, 180, 0, 179.9999999]), rng.choice([-85.05112878, 85.05112878, 0, 85.05]))
        points.append((max(-180.0, min(180.0, point[0])), max(-85.05112878, min(85.05112878, point[1])), b"p%d" % n))
    return points


def load(conns, key, points, seed=None):
    commands = []
    for start in range(0, len(points), 500):
        words = [b"GEOADD", key]
        for lon, lat, member in points[start:start + 500]:
            words += [repr(lon).encode(), repr(lat).encode(), member]
        commands.append(words)
    compare(conns, commands, seed)


def search_command(rng, key, points, store=None):
    lon, lat, member = rng.choice(points)
    if rng.random() < 0.3:
        origin = [b"FROMMEMBER", member]
    else:
        origin = [b"FROMLONLAT", repr(max(-180, min(180, lon + rng.gauss(0, 0.1)))).encode(),
                  repr(max(-85.05112878, min(85.05112878, lat + rng.gauss(0, 0.1)))).encode()]
    unit = rng.choice(UNITS)
    scale = {b"m": 1, b"km": 1000, b"mi": 1609.34, b"ft": 0.3048}[unit]
    meters = rng.choice([50, 500, 5_000, 20_000, 50_000]) if rng.random() < 0.97 else 3_000_000
    size = lambda: repr(meters * rng.uniform(0.2, 2) / scale).encode()
    shape = [b"BYRADIUS", size(), unit] if rng.random() < 0.5 else [b"BYBOX", size(), size(), unit]
    options = []
    if rng.random() < 0.5:
        options.append(rng.choice([b"ASC", b"DESC"]))
    if rng.random() < 0.4:
        options += [b"COUNT", str(rng.choice([1, 3, 10, 100])).encode()] + ([b"ANY"] if rng.random() < 0.3 else [])
    if store is None:
        options += [w for w in (b"WITHCOORD", b"WITHDIST", b"WITHHASH") if rng.random() < 0.4]
        return [b"GEOSEARCH", key] + origin + shape + options
    return [b"GEOSEARCHSTORE", store, key] + origin + shape + options + ([b"STOREDIST"] if rng.random() < 0.5 else [])


def radius_command(rng, key, points):
    lon, lat, member = rng.choice(points)
    unit = rng.choice(UNITS)
    radius = repr(rng.choice([100, 2_000, 20_000, 100_000]) * rng.uniform(0.5, 2)).encode()
    options = [w for w in (b"WITHCOORD", b"WITHDIST", b"WITHHASH") if rng.random() < 0.4]
    if rng.random() < 0.4:
        options += [b"COUNT", b"5"] + ([b"ANY"] if rng.random() < 0.3 else [])
    if rng.random() < 0.5:
        options.append(rng.choice([b"ASC", b"DESC"]))
    if rng.random() < 0.5:
        return [rng.choice([b"GEORADIUS", b"GEORADIUS_RO"]), key, repr(lon).encode(), repr(lat).encode(), radius, unit] + options
    return [rng.choice([b"GEORADIUSBYMEMBER", b"GEORADIUSBYMEMBER_RO"]), key, member, radius, unit] + options


def test_searches_on_a_hundred_thousand_points_match_redis(pair):
    seed = int(os.environ.get("DIFF_SEED", random.randrange(1 << 32)))
    rng = random.Random(seed)
    conns = connections(pair)
    points = world_points(rng, 100_000)
    load(conns, b"world", points, seed)
    sample = rng.sample(points, 300)
    compare(conns, [[b"ZCARD", b"world"], [b"GEOPOS", b"world"] + [p[2] for p in sample],
                    [b"GEOHASH", b"world"] + [p[2] for p in sample], [b"ZRANGE", b"world", b"0", b"999", b"WITHSCORES"]], seed)
    compare(conns, [[b"GEODIST", b"world", a[2], b[2], rng.choice(UNITS)] for a, b in zip(sample, reversed(sample))], seed)
    found = 0
    for _ in range(20):
        commands = [search_command(rng, b"world", points) for _ in range(40)]
        commands += [radius_command(rng, b"world", points) for _ in range(10)]
        found += sum(len(r) for r in compare(conns, commands, seed) if isinstance(r, list))
        stores = []
        for _ in range(10):
            stores += [search_command(rng, b"world", points, store=b"result"),
                       [b"ZRANGE", b"result", b"0", b"-1", b"WITHSCORES"], [b"OBJECT", b"ENCODING", b"result"]]
        compare(conns, stores, seed)
    assert found > 10_000  # the searches did find things


def test_dense_points_and_ties_match_redis(pair):
    """Many members on the same few cells: equal distances, where the order of ties must match too."""
    seed = int(os.environ.get("DIFF_SEED", random.randrange(1 << 32)))
    rng = random.Random(seed)
    conns = connections(pair)
    spots = [(7.0 + n * 1e-5, 45.0 + (n % 3) * 1e-5) for n in range(8)]
    points = [(*rng.choice(spots), b"m%d" % n) for n in range(400)]
    load(conns, b"dense", points, seed)
    commands = []
    for _ in range(300):
        commands.append(search_command(rng, b"dense", points))
    compare(conns, commands, seed)


@pytest.mark.parametrize("protocol", [2, 3])
def test_commands_options_and_errors_match_redis(pair, protocol):
    conns = connections(pair, protocol)
    setup = [[b"GEOADD", b"Sicily", b"13.361389", b"38.115556", b"Palermo", b"15.087269", b"37.502669", b"Catania"],
             [b"GEOADD", b"Sicily", b"CH", b"13.361389", b"38.115556", b"Palermo", b"12.5", b"37.8", b"Marsala"],
             [b"GEOADD", b"Sicily", b"NX", b"1", b"1", b"Palermo", b"14.0", b"37.0", b"Gela"],
             [b"GEOADD", b"Sicily", b"XX", b"CH", b"1", b"1", b"Gela", b"2", b"2", b"Nowhere"],
             [b"ZADD", b"odd", b"-1", b"neg", b"1.5", b"frac", b"inf", b"top", b"-inf", b"bottom", b"4503599627370496", b"big",
              b"9007199254740993", b"bigger", b"1e300", b"huge", b"0", b"zero", b"4503599627370495", b"last"],
             [b"SET", b"string", b"x"]]
    commands = setup + [
        [b"GEOPOS", b"Sicily", b"Palermo", b"Catania", b"missing", b"Gela"],
        [b"GEOPOS", b"nokey", b"a"], [b"GEOPOS", b"string", b"a"], [b"GEOPOS", b"Sicily"],
        [b"GEOPOS", b"odd", b"neg", b"frac", b"top", b"bottom", b"big", b"bigger", b"huge", b"zero", b"last"],
        [b"GEOHASH", b"odd", b"neg", b"frac", b"top", b"bottom", b"big", b"bigger", b"huge", b"zero", b"last"],
        [b"GEOHASH", b"Sicily", b"Palermo", b"Catania", b"nope"], [b"GEOHASH", b"nokey", b"a", b"b"],
        [b"GEODIST", b"Sicily", b"Palermo", b"Catania"], [b"GEODIST", b"Sicily", b"Palermo", b"Catania", b"KM"],
        [b"GEODIST", b"Sicily", b"Palermo", b"Catania", b"mi"], [b"GEODIST", b"Sicily", b"Palermo", b"Catania", b"ft"],
        [b"GEODIST", b"Sicily", b"Palermo", b"Catania", b"yd"], [b"GEODIST", b"Sicily", b"Palermo", b"nope"],
        [b"GEODIST", b"nokey", b"a", b"b"], [b"GEODIST", b"nokey", b"a", b"b", b"yd"], [b"GEODIST", b"Sicily", b"a", b"b", b"m", b"x"],
        [b"GEODIST", b"odd", b"top", b"bottom"], [b"GEODIST", b"odd", b"neg", b"huge"], [b"GEODIST", b"string", b"a", b"b"],
        [b"GEOADD", b"Sicily", b"181", b"0", b"x"], [b"GEOADD", b"Sicily", b"0", b"-85.06", b"x"],
        [b"GEOADD", b"Sicily", b"abc", b"0", b"x"], [b"GEOADD", b"Sicily", b"1", b"2"], [b"GEOADD", b"Sicily", b"NX", b"XX", b"1", b"2", b"x"],
        [b"GEOADD", b"Sicily", b"NX", b"XX", b"CH"], [b"GEOADD", b"Sicily", b"GT", b"1", b"2", b"x"],
        [b"GEOADD", b"Sicily", b"1", b"2", b"ok", b"200", b"2", b"bad"], [b"ZSCORE", b"Sicily", b"ok"],
        [b"GEOADD", b"string", b"1", b"2", b"x"], [b"GEOADD", b"edge", b"180", b"85.05112878", b"ne", b"-180", b"-85.05112878", b"sw"],
        [b"GEOPOS", b"edge", b"ne", b"sw"], [b"ZRANGE", b"edge", b"0", b"-1", b"WITHSCORES"], [b"GEOHASH", b"edge", b"ne", b"sw"],
        [b"GEOSEARCH", b"Sicily", b"FROMLONLAT", b"15", b"37", b"BYRADIUS", b"200", b"km", b"ASC", b"WITHCOORD", b"WITHDIST", b"WITHHASH"],
        [b"GEOSEARCH", b"Sicily", b"FROMMEMBER", b"Palermo", b"BYBOX", b"400", b"400", b"km", b"DESC", b"WITHDIST"],
        [b"GEOSEARCH", b"Sicily", b"FROMMEMBER", b"Palermo", b"BYBOX", b"400", b"400", b"km", b"COUNT", b"1"],
        [b"GEOSEARCH", b"Sicily", b"FROMMEMBER", b"Palermo", b"BYBOX", b"400", b"400", b"km", b"COUNT", b"2", b"ANY"],
        [b"GEOSEARCH", b"Sicily", b"FROMMEMBER", b"nope", b"BYRADIUS", b"1", b"m"],
        [b"GEOSEARCH", b"nokey", b"FROMMEMBER", b"nope", b"BYRADIUS", b"1", b"m"],
        [b"GEOSEARCH", b"nokey", b"FROMMEMBER", b"nope", b"BYRADIUS", b"-1", b"m"],
        [b"GEOSEARCH", b"string", b"FROMMEMBER", b"nope", b"BYRADIUS", b"1", b"m"],
        [b"GEOSEARCH", b"Sicily", b"FROMMEMBER", b"Palermo", b"FROMLONLAT", b"1", b"2", b"BYRADIUS", b"1", b"m"],
        [b"GEOSEARCH", b"Sicily", b"FROMLONLAT", b"1", b"2", b"FROMMEMBER", b"Palermo", b"BYRADIUS", b"1", b"m"],
        [b"GEOSEARCH", b"Sicily", b"FROMMEMBER", b"Palermo", b"BYRADIUS", b"1", b"m", b"BYBOX", b"1", b"1", b"m"],
        [b"GEOSEARCH", b"Sicily", b"FROMMEMBER", b"Palermo", b"COUNT", b"1"],
        [b"geosearch", b"Sicily", b"BYRADIUS", b"1", b"m", b"COUNT", b"1"],
        [b"GEOSEARCH", b"Sicily", b"FROMMEMBER", b"Palermo", b"BYRADIUS", b"1", b"m", b"ANY"],
        [b"GEOSEARCH", b"Sicily", b"FROMMEMBER", b"Palermo", b"BYRADIUS", b"1", b"m", b"COUNT", b"0"],
        [b"GEOSEARCH", b"Sicily", b"FROMMEMBER", b"Palermo", b"BYRADIUS", b"1", b"m", b"COUNT", b"x"],
        [b"GEOSEARCH", b"Sicily", b"FROMMEMBER", b"Palermo", b"BYRADIUS", b"1", b"m", b"COUNT"],
        [b"GEOSEARCH", b"Sicily", b"FROMMEMBER", b"Palermo", b"BYRADIUS", b"x", b"m"],
        [b"GEOSEARCH", b"Sicily", b"FROMMEMBER", b"Palermo", b"BYRADIUS", b"1", b"yd"],
        [b"GEOSEARCH", b"Sicily", b"FROMMEMBER", b"Palermo", b"BYBOX", b"x", b"1", b"m"],
        [b"GEOSEARCH", b"Sicily", b"FROMMEMBER", b"Palermo", b"BYBOX", b"1", b"x", b"m"],
        [b"GEOSEARCH", b"Sicily", b"FROMMEMBER", b"Palermo", b"BYBOX", b"-1", b"1", b"m"],
        [b"GEOSEARCH", b"Sicily", b"FROMMEMBER", b"Palermo", b"BYBOX", b"1", b"1"],
        [b"GEOSEARCH", b"Sicily", b"FROMLONLAT", b"200", b"1", b"BYRADIUS", b"1", b"m"],
        [b"GEOSEARCH", b"Sicily", b"FROMMEMBER", b"Palermo", b"BYRADIUS", b"1", b"m", b"STORE", b"x"],
        [b"GEOSEARCH", b"Sicily", b"FROMMEMBER", b"Palermo", b"BYRADIUS", b"1", b"m", b"STOREDIST"],
        [b"GEOSEARCH", b"Sicily", b"FROMMEMBER", b"Palermo", b"BYRADIUS", b"0", b"m", b"WITHDIST"],
        [b"GEOSEARCH", b"Sicily", b"FROMMEMBER", b"Palermo", b"BYRADIUS", b"inf", b"m", b"WITHDIST"],
        [b"GEOSEARCH", b"Sicily", b"FROMMEMBER", b"Palermo", b"BYBOX", b"inf", b"1", b"m"],
        [b"GEOSEARCH", b"Sicily", b"FROMLONLAT", b"13.361389", b"38.115556", b"BYBOX", b"0", b"0", b"m", b"WITHCOORD"],
        [b"GEOSEARCHSTORE", b"dst", b"Sicily", b"FROMMEMBER", b"Palermo", b"BYRADIUS", b"200", b"km"],
        [b"ZRANGE", b"dst", b"0", b"-1", b"WITHSCORES"], [b"OBJECT", b"ENCODING", b"dst"],
        [b"GEOSEARCHSTORE", b"dst", b"Sicily", b"FROMMEMBER", b"Palermo", b"BYRADIUS", b"200", b"km", b"STOREDIST", b"DESC", b"COUNT", b"2"],
        [b"ZRANGE", b"dst", b"0", b"-1", b"WITHSCORES"],
        [b"GEOSEARCHSTORE", b"dst", b"Sicily", b"FROMMEMBER", b"Palermo", b"BYRADIUS", b"200", b"km", b"WITHDIST"],
        [b"GEOSEARCHSTORE", b"dst", b"Sicily", b"FROMLONLAT", b"0", b"0", b"BYRADIUS", b"1", b"km"], [b"EXISTS", b"dst"],
        [b"SET", b"dst", b"v"], [b"GEOSEARCHSTORE", b"dst", b"nokey", b"FROMMEMBER", b"x", b"BYRADIUS", b"1", b"km"], [b"EXISTS", b"dst"],
        [b"GEOSEARCHSTORE", b"dst", b"string", b"FROMMEMBER", b"x", b"BYRADIUS", b"1", b"km"],
        [b"GEOSEARCHSTORE", b"Sicily", b"Sicily", b"FROMMEMBER", b"Palermo", b"BYRADIUS", b"100", b"km"],
        [b"ZRANGE", b"Sicily", b"0", b"-1", b"WITHSCORES"],
        [b"GEOADD", b"Sicily", b"13.361389", b"38.115556", b"Palermo", b"15.087269", b"37.502669", b"Catania"],
        [b"GEORADIUS", b"Sicily", b"15", b"37", b"200", b"km", b"WITHDIST", b"WITHCOORD", b"ASC"],
        [b"GEORADIUS", b"Sicily", b"15", b"37", b"200", b"KM", b"STORE", b"r1"], [b"ZRANGE", b"r1", b"0", b"-1", b"WITHSCORES"],
        [b"GEORADIUS", b"Sicily", b"15", b"37", b"200", b"km", b"STOREDIST", b"r2", b"COUNT", b"1"],
        [b"ZRANGE", b"r2", b"0", b"-1", b"WITHSCORES"],
        [b"GEORADIUS", b"Sicily", b"15", b"37", b"200", b"km", b"STORE", b"r1", b"WITHDIST"],
        [b"GEORADIUS_RO", b"Sicily", b"15", b"37", b"200", b"km", b"STORE", b"r1"],
        [b"GEORADIUS", b"Sicily", b"15", b"37", b"200", b"km", b"STORE"],
        [b"GEORADIUS", b"Sicily", b"15", b"37", b"-200", b"km"], [b"GEORADIUS", b"Sicily", b"15", b"37", b"200", b"yd"],
        [b"GEORADIUS", b"Sicily", b"15", b"99", b"200", b"km"], [b"GEORADIUS", b"nokey", b"15", b"37", b"200", b"km"],
        [b"GEORADIUS", b"nokey", b"15", b"37", b"200", b"km", b"STORE", b"r1"], [b"EXISTS", b"r1"],
        [b"GEORADIUS", b"Sicily", b"15", b"37", b"200", b"km", b"FROMMEMBER", b"x"],
        [b"GEORADIUSBYMEMBER", b"Sicily", b"Palermo", b"200", b"km", b"WITHDIST", b"DESC"],
        [b"GEORADIUSBYMEMBER", b"Sicily", b"nope", b"200", b"km"], [b"GEORADIUSBYMEMBER", b"nokey", b"nope", b"-1", b"yd"],
        [b"GEORADIUSBYMEMBER", b"Sicily", b"Palermo", b"200", b"km", b"STOREDIST", b"r3"], [b"ZRANGE", b"r3", b"0", b"-1", b"WITHSCORES"],
        [b"GEORADIUSBYMEMBER_RO", b"Sicily", b"Palermo", b"200", b"km", b"COUNT", b"1", b"WITHHASH"],
        [b"GEORADIUSBYMEMBER_RO", b"Sicily", b"Palermo", b"200", b"km", b"STOREDIST", b"r3"],
        [b"GEORADIUS", b"odd", b"0", b"0", b"inf", b"m", b"WITHCOORD"],
        [b"COMMAND", b"GETKEYS", b"GEORADIUS", b"k", b"0", b"0", b"1", b"m", b"STORE", b"a", b"STOREDIST", b"b"],
        [b"COMMAND", b"GETKEYS", b"GEORADIUSBYMEMBER", b"k", b"m", b"1", b"m", b"store", b"a"],
        [b"COMMAND", b"GETKEYS", b"GEOSEARCHSTORE", b"d", b"s", b"FROMMEMBER", b"m", b"BYRADIUS", b"1", b"m"],
    ]
    compare(conns, commands)


def test_search_edges_match_redis(pair):
    """Centers near the poles and the antimeridian, and sizes from nothing to larger than the earth."""
    seed = int(os.environ.get("DIFF_SEED", random.randrange(1 << 32)))
    rng = random.Random(seed)
    conns = connections(pair)
    points = world_points(rng, 20_000)
    points += [(rng.choice([-180, 180]) + rng.uniform(-2, 2) * (1 if rng.random() < 0.5 else -1), rng.uniform(-85, 85), b"e%d" % n)
               for n in range(2_000)]
    points = [(max(-180.0, min(180.0, lon)), lat, member) for lon, lat, member in points]
    points += [(rng.uniform(-180, 180), rng.choice([1, -1]) * rng.uniform(80, 85.05112878), b"pole%d" % n) for n in range(2_000)]
    load(conns, b"edges", points, seed)
    commands = []
    for _ in range(400):
        lon = rng.choice([rng.uniform(-180, 180), rng.choice([-180, 180, 179.99, -179.99])])
        lat = rng.choice([rng.uniform(-85.05112878, 85.05112878), rng.choice([85.05112878, -85.05112878, 84.9, -70, 67])])
        size = repr(rng.choice([0, 1, 1e3, 1e5, 1e6, 5e6, 2e7, 4e7])).encode()
        shape = [b"BYRADIUS", size, b"m"] if rng.random() < 0.5 else [b"BYBOX", size, repr(float(size) * rng.uniform(0.1, 3)).encode(), b"m"]
        commands.append([b"GEOSEARCH", b"edges", b"FROMLONLAT", repr(lon).encode(), repr(lat).encode()] + shape
                        + rng.choice([[], [b"ASC"], [b"COUNT", b"20"], [b"DESC", b"WITHDIST"]]))
    results = compare(conns, commands, seed)
    assert any(isinstance(r, list) and len(r) > 1000 for r in results)
