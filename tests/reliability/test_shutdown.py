"""Every way the server stops, under write load, against what was acknowledged: SHUTDOWN and SIGTERM with
snapshots and with the append-only file, kill -9 after FLUSHALL and SAVE. An acknowledged write must be
in what the restarted server loads; a deleted key must not come back; a SAVE must not roll data back.
"""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import pytest
import redis

from support import servers

ROUNDS = int(os.environ.get("SHUTDOWN_ROUNDS", "4"))


class Writers:
    """Threads that INCR their own counter as fast as they can, remembering the last acknowledged value."""

    def __init__(self, port, count=6):
        self.port = port
        self.acked = {}
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(f"counter:{i}",), daemon=True) for i in range(count)]

    def run(self, key):
        try:
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        except OSError:
            return
        command = b"*2\r\n$4\r\nINCR\r\n$%d\r\n%s\r\n" % (len(key), key.encode())
        pending = b""
        try:
            while not self.stop.is_set():
                # Pipelines of 16: more writes in flight at the moment the server stops.
                sock.sendall(command * 16)
                for _ in range(16):
                    while b"\r\n" not in pending:
                        chunk = sock.recv(4096)
                        if not chunk:
                            return
                        pending += chunk
                    line, pending = pending.split(b"\r\n", 1)
                    if not line.startswith(b":"):
                        return
                    self.acked[key] = int(line[1:])
        except OSError:
            return
        finally:
            sock.close()

    def __enter__(self):
        for t in self.threads:
            t.start()
        time.sleep(0.3)
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=10)


def restart(server):
    return servers.ServerProcess(server.argv, server.port, server.workdir, server.name).start()


def check(server, acked, how):
    client = redis.Redis(port=server.port)
    deadline = time.time() + 15
    while True:
        try:
            values = {key: int(client.get(key) or 0) for key in acked}
            break
        except redis.exceptions.BusyLoadingError:
            assert time.time() < deadline
            time.sleep(0.05)
    lost = {key: (value, values[key]) for key, value in acked.items() if values[key] < value}
    assert not lost, f"{how}: acknowledged INCRs lost (acknowledged, found): {lost}"
    # At most the writes in flight (unanswered) beyond what was acknowledged.
    ahead = {key: (value, values[key]) for key, value in acked.items() if values[key] > value + 16}
    assert not ahead, f"{how}: more than the writes in flight came back: {ahead}"


MODES = {
    "shutdown-rdb": (["--save", "3600 1", "--appendonly", "no"], "SHUTDOWN"),
    "sigterm-rdb": (["--save", "3600 1", "--appendonly", "no"], "SIGTERM"),
    "sigterm-aof-everysec": (["--save", "", "--appendonly", "yes", "--appendfsync", "everysec"], "SIGTERM"),
    "shutdown-nosave-aof-always": (["--save", "", "--appendonly", "yes", "--appendfsync", "always"], "SHUTDOWN NOSAVE"),
    "shutdown-aof-and-rdb": (["--save", "3600 1", "--appendonly", "yes"], "SHUTDOWN"),
}


@pytest.mark.parametrize("mode", list(MODES))
def test_no_acknowledged_write_lost_at_shutdown(mode):
    flags, how = MODES[mode]
    server = servers.start_nova(*flags)
    try:
        for round_number in range(ROUNDS):
            with Writers(server.port) as writers:
                if how == "SIGTERM":
                    server.process.send_signal(signal.SIGTERM)
                else:
                    try:
                        redis.Redis(port=server.port).execute_command(*how.split())
                    except redis.exceptions.ConnectionError:
                        pass  # a successful SHUTDOWN closes the connection without a reply
                assert server.process.wait(timeout=30) == 0, server.log()[-3000:]
            acked = dict(writers.acked)
            assert acked, "no write was acknowledged before the stop"
            server = restart(server)
            check(server, acked, f"{mode}, round {round_number + 1}")
    finally:
        server.cleanup()


def test_commands_after_shutdown_get_no_reply():
    """Once SHUTDOWN has saved, another client's next command is not run (the connection closes)."""
    server = servers.start_nova("--save", "3600 1", "--appendonly", "no")
    try:
        other = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        other.sendall(b"PING\r\n")
        assert other.recv(64) == b"+PONG\r\n"
        admin = redis.Redis(port=server.port)
        admin.set("before", "1")
        admin.shutdown()  # redis-py takes the closed connection as success
        other.sendall(b"SET after 1\r\n")
        assert other.recv(64) == b""
        assert server.process.wait(timeout=10) == 0
        server = restart(server)
        client = redis.Redis(port=server.port)
        assert client.get("before") == b"1"
        assert client.get("after") is None
    finally:
        server.cleanup()


def kill9_and_restart(server):
    server.process.kill()
    server.process.wait()
    return restart(server)


def test_flushall_is_in_the_aof_after_a_single_change():
    """One change since the last save, then FLUSHALL (which saves): the FLUSHALL must reach the AOF,
    else the deleted keys come back after kill -9."""
    server = servers.start_nova("--save", "3600 1", "--appendonly", "yes", "--appendfsync", "always")
    try:
        client = redis.Redis(port=server.port)
        client.set("one", "1")
        client.save()
        client.set("two", "2")  # exactly one change since the save
        client.flushall()
        server = kill9_and_restart(server)
        assert redis.Redis(port=server.port).dbsize() == 0
        client = redis.Redis(port=server.port)
        client.flushall()  # FLUSHALL of an empty dataset is logged too (Redis 7.0 forces it)
        server = kill9_and_restart(server)
        assert redis.Redis(port=server.port).dbsize() == 0
    finally:
        server.cleanup()


def test_save_is_not_replayed_from_the_aof():
    """SAVE and BGSAVE change no data: they must not be logged, or every start re-runs them and writes
    an old dump.rdb over a newer one."""
    server = servers.start_nova("--save", "", "--appendonly", "yes", "--appendfsync", "always")
    try:
        client = redis.Redis(port=server.port)
        client.mset({f"a:{i}": i for i in range(1000)})
        client.save()
        client.mset({f"b:{i}": i for i in range(1000)})
        client.bgsave()
        deadline = time.time() + 10
        while client.info("persistence")["rdb_bgsave_in_progress"]:
            assert time.time() < deadline
            time.sleep(0.05)
        aof_dir = os.path.join(server.workdir, "appendonlydir")
        logged = b"".join(open(os.path.join(aof_dir, name), "rb").read()
                          for name in os.listdir(aof_dir) if name.endswith(".aof"))
        assert b"SAVE" not in logged.upper()
        server = kill9_and_restart(server)
        assert redis.Redis(port=server.port).dbsize() == 2000
        server.stop()
        # The snapshot the BGSAVE wrote still has every key after the AOF was replayed.
        snapshot_only = servers.ServerProcess(
            [a if a != "yes" else "no" for a in server.argv], server.port, server.workdir, server.name).start()
        assert redis.Redis(port=server.port).dbsize() == 2000
        snapshot_only.stop()
    finally:
        server.cleanup()


def test_failed_foreground_save_does_not_deny_writes():
    """Only a failed background save sets MISCONF (Redis's stop-writes-on-bgsave-error)."""
    server = servers.start_nova("--save", "3600 1", "--appendonly", "no", "--enable-protected-configs", "yes")
    target = os.path.join(server.workdir, "gone")
    try:
        os.mkdir(target)
        client = redis.Redis(port=server.port)
        client.config_set("dir", target)
        os.rmdir(target)
        with pytest.raises(redis.exceptions.ResponseError):
            client.save()
        client.set("still", "writable")
        assert client.bgsave()
        deadline = time.time() + 10
        while client.info("persistence")["rdb_bgsave_in_progress"]:
            assert time.time() < deadline
            time.sleep(0.05)
        with pytest.raises(redis.exceptions.ResponseError, match="MISCONF"):
            client.set("now", "refused")
    finally:
        server.cleanup()


def test_password_flag_not_visible_in_process_list():
    server = servers.start_nova(password="visible-nowhere-42")
    try:
        with open(f"/proc/{server.process.pid}/cmdline", "rb") as f:
            cmdline = f.read()
        assert b"visible-nowhere-42" not in cmdline
        assert cmdline.startswith(b"nova-cache-server 127.0.0.1:%d" % server.port)
        listing = subprocess.run(["ps", "-o", "args=", "-p", str(server.process.pid)],
                                 capture_output=True, text=True).stdout
        assert "visible-nowhere-42" not in listing
    finally:
        server.cleanup()


def test_unwritable_aof_directory_says_why():
    """The server cannot create its append-only directory: the log names the reason (it said "No such
    file or directory" when the reason was "Permission denied"). Root ignores permission bits, so the
    server runs as nobody here."""
    if os.geteuid() == 0 and not shutil.which("setpriv"):
        pytest.skip("needs setpriv to drop root")
    parent = tempfile.mkdtemp(prefix="nova-aof-perm-")
    data = os.path.join(parent, "data")
    os.mkdir(data)
    os.chmod(parent, 0o755)
    # Owned by root and 0755, nobody may not create appendonlydir in it; another user gets 0555.
    os.chmod(data, 0o755 if os.geteuid() == 0 else 0o555)
    port = servers.free_port()
    argv = [servers.nova_binary(), "--port", str(port), "--dir", str(data), "--appendonly", "yes"]
    if os.geteuid() == 0:
        argv = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"] + argv
    result = subprocess.run(argv, capture_output=True, text=True, timeout=20)
    assert result.returncode != 0
    assert "Can't open or create append-only dir" in result.stdout + result.stderr
    assert "Permission denied" in result.stdout + result.stderr
    shutil.rmtree(parent, ignore_errors=True)


def fill(client, keys=200_000, size=500):
    value = b"v" * size
    for start in range(0, keys, 20_000):
        pipe = client.pipeline(transaction=False)
        for i in range(start, min(keys, start + 20_000)):
            pipe.set(f"bulk:{i}", value)
        pipe.execute()


def test_flushall_during_bgsave_does_not_resurrect_keys():
    """A background save still writing the old data when FLUSHALL runs must not be installed after the
    empty snapshot FLUSHALL writes (Redis kills its saving child): the keys would come back."""
    server = servers.start_nova("--save", "3600 1", "--appendonly", "no")
    try:
        client = redis.Redis(port=server.port)
        fill(client)
        client.bgsave()
        assert client.info("persistence")["rdb_bgsave_in_progress"] == 1
        client.flushall()
        time.sleep(3)  # long enough for the abandoned save to have finished, had it gone on
        server = kill9_and_restart(server)
        assert redis.Redis(port=server.port).dbsize() == 0
    finally:
        server.cleanup()


def test_shutdown_during_bgsave_saves_the_current_data():
    """SHUTDOWN while a background save runs: the running save is abandoned, the current data saved."""
    server = servers.start_nova("--save", "3600 1", "--appendonly", "no")
    try:
        client = redis.Redis(port=server.port)
        fill(client)
        client.bgsave()
        client.set("written-after-bgsave", "1")
        client.shutdown()
        assert server.process.wait(timeout=30) == 0, server.log()[-2000:]
        server = restart(server)
        client = redis.Redis(port=server.port)
        assert client.get("written-after-bgsave") == b"1"
        assert client.dbsize() == 200_001
    finally:
        server.cleanup()
