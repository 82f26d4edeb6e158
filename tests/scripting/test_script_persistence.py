"""Issue 17: scripts' effects in the append-only file — the commands a script ran, between MULTI and EXEC
(never the EVAL, whose replay would depend on the script cache and on time) — and no acknowledged script
write lost to kill -9 under `appendfsync always`."""
import os
import tempfile
import threading
import time

import redis

from support import servers

COUNTER = "local n = redis.call('incr', KEYS[1]); redis.call('rpush', KEYS[2], n); return n"


def incremental_aof(workdir):
    directory = os.path.join(workdir, "appendonlydir")
    name = [n for n in sorted(os.listdir(directory)) if ".incr." in n][-1]
    with open(os.path.join(directory, name), "rb") as f:
        return f.read()


def test_script_effects_are_logged_as_commands():
    workdir = tempfile.mkdtemp()
    server = servers.start_nova("--appendonly", "yes", "--appendfsync", "always", "--save", "", workdir=workdir)
    try:
        c = redis.Redis(port=server.port)
        assert c.eval(COUNTER, 2, "n", "history") == 1
        c.eval("redis.call('select', 3); redis.call('set', 'elsewhere', 'x')", 0)
        assert c.eval("return redis.call('get', 'n')", 0) == b"1"  # a read: nothing logged
        c.eval("return redis.call('set', KEYS[1], 'once')", 1, "single")  # one command: no MULTI around it
        logged = incremental_aof(workdir)
        assert b"EVAL" not in logged.upper().replace(b"EVALSHA", b"")
        assert logged.count(b"MULTI") == 1 and logged.count(b"EXEC") == 1  # only the two-command script
        assert b"incr" in logged and b"rpush" in logged and b"elsewhere" in logged and b"once" in logged
        assert c.get("elsewhere") is None, "SELECT inside a script does not change the caller's database"
        server.kill()
        again = servers.start_nova("--appendonly", "yes", "--save", "", workdir=workdir)
        try:
            c = redis.Redis(port=again.port)
            assert c.get("n") == b"1" and c.lrange("history", 0, -1) == [b"1"] and c.get("single") == b"once"
            assert redis.Redis(port=again.port, db=3).get("elsewhere") == b"x"
        finally:
            again.cleanup()
    finally:
        server.cleanup()


def test_acknowledged_script_writes_survive_kill_9():
    workdir = tempfile.mkdtemp()
    server = servers.start_nova("--appendonly", "yes", "--appendfsync", "always", "--save", "", workdir=workdir)
    acknowledged = []
    lock = threading.Lock()
    stop = threading.Event()

    def writer(name):
        client = redis.Redis(port=server.port, socket_timeout=5)
        add = client.register_script(COUNTER)
        while not stop.is_set():
            try:
                value = add(keys=[f"count:{name}", f"history:{name}"])
            except (redis.ConnectionError, redis.TimeoutError):
                return
            with lock:
                acknowledged.append((name, value))

    threads = [threading.Thread(target=writer, args=(n,)) for n in ("a", "b")]
    for thread in threads:
        thread.start()
    time.sleep(1.5)
    server.kill()
    stop.set()
    for thread in threads:
        thread.join()
    assert len(acknowledged) > 100
    again = servers.start_nova("--appendonly", "yes", "--save", "", workdir=workdir)
    try:
        c = redis.Redis(port=again.port)
        for name in ("a", "b"):
            highest = max((value for who, value in acknowledged if who == name), default=0)
            count = int(c.get(f"count:{name}") or 0)
            history = [int(v) for v in c.lrange(f"history:{name}", 0, -1)]
            assert count >= highest, f"{name}: acknowledged {highest}, recovered {count}"
            assert history == list(range(1, count + 1)), "each script's two writes are recovered together"
    finally:
        again.cleanup()
        server.cleanup()
