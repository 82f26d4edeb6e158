"""A consumer-group job queue on nova-cache-server with redis-py's stream API, as an application runs one:
a producer, three consumer processes reading with XREADGROUP … BLOCK, one of them crashing with unacknowledged
entries, the others taking those over with XAUTOCLAIM. Every entry is processed and acknowledged exactly
once (XACK answering 1 once per ID), none is lost."""
import os
import subprocess
import sys
import tempfile
import textwrap
import time

import redis

CONSUMER = textwrap.dedent("""
    import os, sys, time
    import redis
    port, name, out, crash_after = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
    r = redis.Redis(port=port)
    read = 0
    idle_rounds = 0
    with open(out, "a") as log:
        while idle_rounds < 30:
            claimed = r.xautoclaim("jobs", "workers", name, min_idle_time=400, start_id="0-0", count=20)[1]
            fresh = r.xreadgroup("workers", name, {"jobs": ">"}, count=10, block=100)
            batch = claimed + (fresh[0][1] if fresh else [])
            if not batch:
                idle_rounds += 1
                continue
            idle_rounds = 0
            for entry_id, fields in batch:
                read += 1
                if crash_after and read >= crash_after:
                    os._exit(3)  # dies holding unacknowledged entries
                if r.xack("jobs", "workers", entry_id) == 1:
                    log.write(entry_id.decode() + " " + fields[b"n"].decode() + "\\n")
                    log.flush()
""")


def test_consumer_group_survives_a_crashed_consumer(nova_server):
    r = redis.Redis(port=nova_server.port)
    r.delete("jobs")
    r.xgroup_create("jobs", "workers", id="$", mkstream=True)
    workdir = tempfile.mkdtemp()
    script = os.path.join(workdir, "consumer.py")
    with open(script, "w") as handle:
        handle.write(CONSUMER)
    outputs = [os.path.join(workdir, f"c{i}.log") for i in range(3)]
    def start(i, crash_after):
        return subprocess.Popen([sys.executable, script, str(nova_server.port), f"c{i}", outputs[i], str(crash_after)])

    # c0 alone first: it takes the first entries and dies after 25 of them, 5 of them unacknowledged.
    consumers = [start(0, 25)]
    produced = [r.xadd("jobs", {"n": n, "payload": "x" * (n % 50)}) for n in range(100)]
    assert consumers[0].wait(30) == 3, "the crashing consumer did not crash"
    assert r.xpending("jobs", "workers")["pending"] > 0
    consumers += [start(1, 0), start(2, 0)]
    for n in range(100, 600):
        produced.append(r.xadd("jobs", {"n": n, "payload": "x" * (n % 50)}))
        if n % 100 == 0:
            time.sleep(0.05)
    for consumer in consumers[1:]:
        assert consumer.wait(60) == 0
    acknowledged = []
    for path in outputs:
        if os.path.exists(path):
            with open(path) as handle:
                acknowledged += [line.split()[0].encode() for line in handle if line.strip()]
    assert len(acknowledged) == len(set(acknowledged)), "an entry was acknowledged twice"
    assert sorted(acknowledged) == sorted(produced), f"lost {len(set(produced) - set(acknowledged))} entries"
    assert r.xpending("jobs", "workers")["pending"] == 0
    info = {g["name"]: g for g in r.xinfo_groups("jobs")}
    assert info[b"workers"]["last-delivered-id"] == produced[-1]
    assert info[b"workers"]["lag"] == 0
    consumers_info = {c["name"]: c for c in r.xinfo_consumers("jobs", "workers")}
    assert set(consumers_info) == {b"c0", b"c1", b"c2"} and consumers_info[b"c0"]["pending"] == 0
    r.close()


def test_redis_py_stream_api(nova_server):
    r = redis.Redis(port=nova_server.port, decode_responses=True)
    r.delete("events")
    ids = [r.xadd("events", {"kind": "click", "n": i}, maxlen=50, approximate=False) for i in range(60)]
    assert r.xlen("events") == 50
    assert [e[0] for e in r.xrange("events", count=3)] == ids[10:13]
    assert [e[0] for e in r.xrevrange("events", count=2)] == ids[-1:-3:-1]
    assert r.xtrim("events", minid=ids[20], approximate=True) == 0  # one node: nothing whole to drop
    assert r.xtrim("events", minid=ids[20], approximate=False) == 10
    assert r.xdel("events", ids[20], ids[21]) == 2
    info = r.xinfo_stream("events")
    assert info["length"] == 38 and info["first-entry"][0] == ids[22] and info["last-entry"][0] == ids[-1]
    full = r.xinfo_stream("events", full=True)
    assert len(full["entries"]) == 10
    r.xgroup_create("events", "g", id="0")
    entries = r.xreadgroup("g", "a", {"events": ">"}, count=5)
    assert [e[0] for e in entries[0][1]] == ids[22:27]
    pending = r.xpending_range("events", "g", min="-", max="+", count=10)
    assert [p["message_id"] for p in pending] == ids[22:27] and {p["consumer"] for p in pending} == {"a"}
    claimed = r.xclaim("events", "g", "b", min_idle_time=0, message_ids=ids[22:24], justid=True)
    assert claimed == ids[22:24]
    assert r.xautoclaim("events", "g", "c", 0, count=2, justid=True) == ids[22:24]
    assert r.xautoclaim("events", "g", "d", 0, count=2) == [ids[24], [(i, {"kind": "click", "n": str(n)}) for n, i in enumerate(ids) if i in ids[22:24]], []]
    assert r.xack("events", "g", *ids[22:27]) == 5
    assert r.xinfo_groups("events")[0]["pending"] == 0
    r.close()
