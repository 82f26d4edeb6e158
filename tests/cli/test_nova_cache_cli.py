"""The operator CLI `nova-cache` against a live server: output, JSON, exit codes, backups, secrets."""
import json
import os
import re
import stat
import shutil
import subprocess
import tempfile
import time

import pytest
import redis

from support import servers

CLI = os.environ.get("NOVA_CLI_BIN") or os.path.join(os.path.dirname(servers.nova_binary()), "nova-cache")


def cli_on_terminal(*args, timeout=60):
    """Runs the CLI with its output on a pseudo-terminal; returns what it printed."""
    import pty
    import select
    controller, terminal = pty.openpty()
    environment = dict(os.environ)
    environment.pop("REDIS_URL", None)
    process = subprocess.Popen([CLI, *args], stdout=terminal, stderr=terminal, stdin=subprocess.DEVNULL, env=environment)
    os.close(terminal)
    output = b""
    deadline = time.time() + timeout
    while time.time() < deadline:
        ready, _, _ = select.select([controller], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # the CLI exited and closed the terminal
                break
            if not chunk:
                break
            output += chunk
        elif process.poll() is not None:
            break
    process.wait(timeout=10)
    os.close(controller)
    assert process.returncode == 0, output
    return output.decode()


def cli(*args, env=None, stdin=subprocess.DEVNULL, timeout=60):
    environment = dict(os.environ)
    environment.pop("REDIS_URL", None)
    environment.update(env or {})
    return subprocess.run([CLI, *args], capture_output=True, text=True, env=environment, stdin=stdin, timeout=timeout)


@pytest.fixture
def url(nova_server):
    redis.Redis(port=nova_server.port).flushall()
    return f"redis://127.0.0.1:{nova_server.port}"


def test_ping_and_unreachable_exit_codes(url):
    done = cli("ping", "--url", url)
    assert done.returncode == 0 and done.stdout.startswith("PONG")
    port = servers.free_port()
    down = cli("ping", "--url", f"redis://127.0.0.1:{port}")
    assert down.returncode == 1 and "cannot connect" in down.stderr


def test_get_set_del_ttl_keys(url):
    assert cli("set", "--url", url + "/2", "greeting", "hello", "--ttl", "100").stdout.strip() == "OK"
    assert cli("get", "--url", url + "/2", "greeting").stdout == "hello\n"
    assert cli("get", "--url", url, "greeting").returncode == 1  # another database
    left = float(cli("ttl", "--url", url + "/2", "greeting").stdout.split()[0])
    assert 98 < left <= 100
    cli("set", "--url", url + "/2", "other", "x")
    assert cli("keys", "--url", url + "/2").stdout.split() == ["greeting", "other"]
    assert cli("keys", "--url", url + "/2", "gr*").stdout.split() == ["greeting"]
    assert cli("del", "--url", url + "/2", "greeting", "missing").stdout.strip() == "1"
    assert cli("ttl", "--url", url + "/2", "greeting").returncode == 1
    # REDIS_URL is the default.
    assert cli("get", "other", env={"REDIS_URL": url + "/2"}).stdout == "x\n"


def test_status_text_and_json(url, nova_server):
    r = redis.Redis(port=nova_server.port, db=3)
    r.set("a", 1)
    r.set("b", 2, ex=100)
    text = cli("status", "--url", url)
    assert text.returncode == 0, text.stderr
    assert ": OK" in text.stdout and "db3=2" in text.stdout and "version" in text.stdout
    status = json.loads(cli("status", "--url", url, "--json").stdout)
    assert status["reachable"] and status["healthy"] and status["keys"] == {"db3": 2}
    assert status["version"] == "7.0.15" and status["role"] == "master" and status["aof_enabled"] is False
    down = cli("status", "--url", f"redis://127.0.0.1:{servers.free_port()}", "--json")
    assert down.returncode == 1 and json.loads(down.stdout)["reachable"] is False


def test_status_unhealthy_after_a_failed_save():
    server = servers.start_nova("--enable-protected-configs", "yes")
    try:
        r = redis.Redis(port=server.port)
        r.set("k", "v")
        gone = os.path.join(server.workdir, "gone")
        os.mkdir(gone)
        r.config_set("dir", gone)
        os.rmdir(gone)  # the snapshot cannot be written (even by root)
        try:
            r.bgsave()
        except redis.ResponseError:
            pass
        deadline = time.time() + 10
        while r.info("persistence")["rdb_bgsave_in_progress"] and time.time() < deadline:
            time.sleep(0.05)
        done = cli("status", "--url", f"redis://127.0.0.1:{server.port}")
        assert done.returncode == 2 and "UNHEALTHY" in done.stdout and "save failed" in done.stdout
        assert json.loads(cli("status", "--url", f"redis://127.0.0.1:{server.port}", "--json").stdout)["healthy"] is False
        r.config_set("dir", server.workdir)  # lets the shutdown save succeed, so the server exits at once
    finally:
        server.cleanup()


def test_stats_counts_hits_and_misses(url, nova_server):
    r = redis.Redis(port=nova_server.port, db=1)
    before = json.loads(cli("stats", "--url", url, "--json").stdout)
    r.set("k", "v")
    for _ in range(3):
        r.get("k")
    r.get("missing")
    after = json.loads(cli("stats", "--url", url, "--json", "--db", "1").stdout)
    assert after["keyspace_hits"] - before["keyspace_hits"] == 3
    assert after["keyspace_misses"] - before["keyspace_misses"] == 1
    assert after["keys"] == 1 and after["db"] == 1
    assert after["total_commands_processed"] > before["total_commands_processed"]
    text = cli("stats", "--url", url).stdout
    assert "hit ratio" in text and "evicted keys" in text


def test_stats_watch_refreshes_with_sparklines(url, nova_server):
    r = redis.Redis(port=nova_server.port)
    r.set("k", "v")
    # On a terminal: redrawn in place.
    on_terminal = cli_on_terminal("stats", "--url", url, "--watch", "0.2", "--count", "3")
    assert on_terminal.count("\x1b[2Kops/s (interval)") == 3
    assert any(bar in on_terminal for bar in "▁▂▃▄▅▆▇█")
    # Into a pipe: one block per refresh, no terminal codes.
    done = cli("stats", "--url", url, "--watch", "0.2", "--count", "3")
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stdout
    blocks = done.stdout.strip().split("\n\n")
    assert len(blocks) == 3 and all("ops/s (interval)" in block and "memory used" in block for block in blocks)
    watched = cli("stats", "--url", url, "--watch", "0.1", "--count", "2", "--json").stdout
    objects = [json.loads("{" + part) for part in watched.strip().lstrip("{").split("\n{") if part.strip()]
    assert len(objects) == 2 and all("interval_ops_per_sec" in o for o in objects)


def test_status_reachable_but_unhealthy_is_exit_2_with_one_line_reason():
    server = servers.start_nova(password="s3cret")
    try:
        base = f"redis://127.0.0.1:{server.port}"
        missing = cli("status", "--url", base)
        assert missing.returncode == 2, missing
        assert missing.stdout.splitlines()[0] == (
            f"{base}/0: UNHEALTHY (a password is required: give one in the URL or NOVA_CACHE_PASSWORD)")
        wrong = cli("status", "--url", f"redis://:nope@127.0.0.1:{server.port}")
        assert wrong.returncode == 2 and "UNHEALTHY (the password (or user) was refused)" in wrong.stdout
        assert "nope" not in wrong.stdout + wrong.stderr
        as_json = json.loads(cli("status", "--url", base, "--json").stdout)
        assert as_json["reachable"] is True and as_json["healthy"] is False
        assert cli("status", "--url", f"redis://:s3cret@127.0.0.1:{server.port}").returncode == 0
    finally:
        server.cleanup()
    # Unreachable: exit 1, the cause in one line (not NIO's nested descriptions).
    refused = cli("status", "--url", f"redis://127.0.0.1:{servers.free_port()}")
    assert refused.returncode == 1 and refused.stdout.count("\n") == 1
    assert refused.stdout.endswith(": UNREACHABLE (Connection refused)\n"), refused.stdout
    unknown = cli("ping", "--url", "redis://no-such-host.invalid:6379")
    assert unknown.returncode == 1
    assert unknown.stderr == "nova-cache: cannot connect to redis://no-such-host.invalid:6379/0: unknown host no-such-host.invalid\n"


def test_status_while_the_dataset_loads_is_exit_2():
    workdir = tempfile.mkdtemp()
    reference = servers.start_redis("--enable-debug-command", "yes", workdir=workdir)
    ref = redis.Redis(port=reference.port)
    ref.execute_command("DEBUG", "POPULATE", "3000000", "key", "64")
    ref.save()
    reference.stop()
    port = servers.free_port()
    process = subprocess.Popen(
        [servers.nova_binary(), "--port", str(port), "--dir", workdir], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        codes = []
        deadline = time.time() + 60
        while time.time() < deadline:
            done = cli("status", "--url", f"redis://127.0.0.1:{port}")
            codes.append(done.returncode)
            if done.returncode == 2:
                assert "UNHEALTHY (loading the dataset into memory)" in done.stdout, done.stdout
            if done.returncode == 0:
                break
            time.sleep(0.05)
        assert 2 in codes, codes
        assert codes[-1] == 0
    finally:
        process.terminate()
        process.wait(timeout=30)
        shutil.rmtree(workdir, ignore_errors=True)


def test_status_and_stats_watch_memory(url, nova_server):
    r = redis.Redis(port=nova_server.port)
    used = r.info("memory")["used_memory"]
    try:
        r.config_set("maxmemory", used * 2)
        text = cli("stats", "--url", url).stdout
        assert "memory used" in text and "of " in text
        stats = json.loads(cli("stats", "--url", url, "--json").stdout)
        assert stats["maxmemory"] == used * 2 and stats["used_memory"] > 0
        assert cli("status", "--url", url, "--memory-warn", "99%").returncode == 0
        low = cli("status", "--url", url, "--memory-warn", "10%")
        assert low.returncode == 2 and "reached the warning threshold 10%" in low.stdout
        assert cli("status", "--url", url, "--memory-warn", "100gb").returncode == 0
        assert cli("status", "--url", url, "--memory-warn", "1kb").returncode == 2
        assert cli("status", "--url", url, "--memory-warn", "lots").returncode != 0
        # Over maxmemory with noeviction: writes are refused, so unhealthy without any threshold.
        r.config_set("maxmemory", used // 2)
        over = cli("status", "--url", url)
        assert over.returncode == 2 and "over maxmemory" in over.stdout and "noeviction" in over.stdout
    finally:
        r.config_set("maxmemory", 0)


def test_the_database_is_chosen_the_same_way_everywhere(url, nova_server):
    assert cli("set", "--url", url + "/1", "--db", "4", "k", "v").returncode == 0  # --db wins over the URL
    assert redis.Redis(port=nova_server.port, db=4).get("k") == b"v"
    assert cli("get", "--url", url, "--db", "4", "k").stdout == "v\n"
    assert cli("keys", "--url", url + "/4").stdout.split() == ["k"]
    stats = json.loads(cli("stats", "--url", url + "/4", "--json").stdout)
    assert stats["db"] == 4 and stats["keys"] == 1
    # flush takes its database from the URL too.
    done = cli("flush", "--url", url + "/4", "--yes")
    assert done.returncode == 0 and "database 4: 1 keys removed" in done.stdout
    assert cli("flush", "--url", url + "?db=4", "--yes").returncode == 0
    assert cli("flush", "--yes", env={"REDIS_URL": url + "/4"}).returncode == 0


def test_output_into_a_pipe_closed_early_ends_quietly(url, nova_server):
    r = redis.Redis(port=nova_server.port)
    pipe = r.pipeline(transaction=False)
    for i in range(50_000):
        pipe.set(f"key:{i}", "x")
    pipe.execute()
    for args in (["keys"], ["stats", "--json"], ["status"], ["keys", "key:1*"]):
        process = subprocess.Popen([CLI, *args, "--url", url], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   stdin=subprocess.DEVNULL)
        process.stdout.read(1)
        process.stdout.close()  # as `| head -c 1` does
        stderr = process.stderr.read().decode()
        code = process.wait(timeout=60)
        assert code in (0, -13, 141), (args, code, stderr)  # done, or ended by SIGPIPE as cat would be
        assert stderr == "", (args, stderr)


def test_verify_of_a_missing_file_says_so(tmp_path):
    missing = cli("verify", str(tmp_path / "nope.rdb"))
    assert missing.returncode == 1 and missing.stderr == f"nova-cache: {tmp_path / 'nope.rdb'}: no such file\n"
    assert "is a directory" in cli("verify", str(tmp_path)).stderr


def test_demo_reports_bad_arguments_and_prints_human_units(nova_server):
    demo = os.path.join(os.path.dirname(CLI), "nova-cache-demo")
    bad = subprocess.run([demo, "--url", "foo://x"], capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2 and bad.stderr.startswith("nova-cache-demo: invalid Redis URL: unsupported scheme 'foo'")
    assert "Backtrace" not in bad.stderr and "Fatal error" not in bad.stderr
    helped = subprocess.run([demo, "--help"], capture_output=True, text=True, timeout=30)
    assert helped.returncode == 0 and helped.stdout.startswith("usage: nova-cache-demo")
    assert subprocess.run([demo, "--loop"], capture_output=True, timeout=30).returncode == 2
    run = subprocess.run([demo, "--url", f"redis://127.0.0.1:{nova_server.port}/1"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    ttl = next(line for line in run.stdout.splitlines() if line.startswith("ttl:"))
    assert re.fullmatch(r"ttl:\s+expires in (1h|5\dm)( \d+m)?( \d+s)?", ttl), ttl  # 1 h with jitter
    assert "seconds" not in run.stdout and re.search(r"in \d+\.\d ms", run.stdout)


def test_flush_needs_confirmation_or_yes(url, nova_server):
    r1 = redis.Redis(port=nova_server.port, db=1)
    r2 = redis.Redis(port=nova_server.port, db=2)
    r1.set("a", 1)
    r2.set("b", 2)
    refused = cli("flush", "--url", url, "--db", "1")  # stdin is not a terminal
    assert refused.returncode == 2 and "--yes" in refused.stderr and r1.dbsize() == 1
    assert cli("flush", "--url", url).returncode != 0  # neither --db nor --all
    done = cli("flush", "--url", url, "--db", "1", "--yes")
    assert done.returncode == 0 and "1 keys removed" in done.stdout
    assert r1.dbsize() == 0 and r2.dbsize() == 1
    assert cli("flush", "--url", url, "--all", "--yes").returncode == 0
    assert r2.dbsize() == 0


def test_backup_copies_verifies_and_prunes(url, nova_server, tmp_path):
    r = redis.Redis(port=nova_server.port)
    r.set("kept", "value")
    target = tmp_path / "backups"
    for _ in range(4):
        done = cli("backup", "--url", url, "--to", str(target), "--keep", "3")
        assert done.returncode == 0, done.stderr
        assert "verified" in done.stdout
    files = sorted(os.listdir(target))
    assert len(files) == 3 and all(f.startswith("nova-cache-") and f.endswith(".rdb") for f in files)
    # Backups hold all the data: private files in a private directory.
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o700
    assert all(stat.S_IMODE(os.stat(target / f).st_mode) == 0o600 for f in files)
    # There is no default directory (a relative one would depend on where the command runs).
    missing = cli("backup", "--url", url)
    assert missing.returncode != 0 and "--to" in missing.stderr
    newest = target / files[-1]
    check = subprocess.run(["redis-check-rdb", str(newest)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout
    assert cli("verify", str(newest)).returncode == 0
    # A damaged copy is detected by the same verification.
    data = bytearray(newest.read_bytes())
    data[12] ^= 0xFF
    damaged = tmp_path / "damaged.rdb"
    damaged.write_bytes(bytes(data))
    bad = cli("verify", str(damaged))
    assert bad.returncode == 1 and "checksum mismatch" in bad.stderr
    (tmp_path / "short.rdb").write_bytes(b"REDIS0010")
    assert cli("verify", str(tmp_path / "short.rdb")).returncode == 1


def test_password_from_url_or_environment_and_never_printed():
    server = servers.start_nova(password="hunter2-secret")
    try:
        base = f"redis://127.0.0.1:{server.port}"
        denied = cli("ping", "--url", base)
        assert denied.returncode == 1 and "NOAUTH" in denied.stderr
        with_url = cli("status", "--url", f"redis://:hunter2-secret@127.0.0.1:{server.port}")
        assert with_url.returncode == 0 and "hunter2" not in with_url.stdout + with_url.stderr
        assert ":***@" in with_url.stdout
        from_env = cli("status", "--url", base, "--json", env={"NOVA_CACHE_PASSWORD": "hunter2-secret"})
        assert from_env.returncode == 0 and "hunter2" not in from_env.stdout
        wrong = cli("status", "--url", f"redis://:nope-nope@127.0.0.1:{server.port}")
        assert wrong.returncode == 2 and "nope-nope" not in wrong.stdout + wrong.stderr  # reachable, refused
    finally:
        server.cleanup()


def test_monitor_streams_commands(url, nova_server):
    watcher = subprocess.Popen([CLI, "monitor", "--url", url, "--count", "3"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 10
        r = redis.Redis(port=nova_server.port)
        while time.time() < deadline and not any("flags=O" in c.get("flags", "") or "O" in c.get("flags", "")
                                                  for c in r.client_list()):
            time.sleep(0.05)
        r.set("watched", "1")
        r.get("watched")
        r.delete("watched")
        out, err = watcher.communicate(timeout=10)
    finally:
        watcher.kill()
    lines = out.splitlines()
    assert watcher.returncode == 0, err
    assert [line.split("] ", 1)[1] for line in lines] == ['"SET" "watched" "1"', '"GET" "watched"', '"DEL" "watched"']
    assert "monitoring" in err


def test_shutdown_save_stops_the_server_with_a_snapshot():
    server = servers.start_nova("--save", "")
    try:
        redis.Redis(port=server.port).set("k", "v")
        done = cli("shutdown", "--save", "--url", f"redis://127.0.0.1:{server.port}")
        assert done.returncode == 0 and "server stopped" in done.stdout, done.stderr
        server.process.wait(timeout=10)
        assert os.path.exists(os.path.join(server.workdir, "dump.rdb"))
        assert cli("verify", os.path.join(server.workdir, "dump.rdb")).returncode == 0
    finally:
        server.cleanup()


def start_command(port, workdir, *extra):
    """A shell command that starts nova-cache-server in the background with its output in workdir."""
    args = " ".join([servers.nova_binary(), "--port", str(port), "--dir", workdir, "--save", "''", *extra])
    return f"{args} >> {workdir}/server.log 2>&1 &"


@pytest.mark.parametrize("appendonly", ["no", "yes"])
def test_restore_stops_replaces_starts_and_keeps_the_old_data(tmp_path, appendonly):
    server = servers.start_nova("--save", "", "--appendonly", appendonly)
    url = f"redis://127.0.0.1:{server.port}"
    try:
        r = redis.Redis(port=server.port)
        r.mset({"kept": "1", "changed": "old"})
        redis.Redis(port=server.port, db=1).set("customer:1", "Ada")
        backup = cli("backup", "--url", url, "--to", str(tmp_path / "backups"))
        assert backup.returncode == 0, backup.stderr
        snapshot = os.path.join(tmp_path / "backups", os.listdir(tmp_path / "backups")[0])
        # Later changes that the restore must undo.
        r.set("changed", "new")
        r.set("added", "x")
        r.delete("kept")
        done = cli("restore", snapshot, "--url", url, "--yes",
                   "--start-command", start_command(server.port, server.workdir, "--appendonly", appendonly))
        assert done.returncode == 0, done.stdout + done.stderr
        assert "stopped the server (SHUTDOWN NOSAVE)" in done.stdout
        assert "server started: 3 keys (db0: 2, db1: 1)" in done.stdout
        r = redis.Redis(port=server.port)
        assert r.get("kept") == b"1" and r.get("changed") == b"old" and r.get("added") is None
        assert redis.Redis(port=server.port, db=1).get("customer:1") == b"Ada"
        aside = [name for name in os.listdir(server.workdir) if ".before-restore-" in name]
        assert any(name.startswith("dump.rdb.before-restore-") for name in aside) or appendonly == "yes"
        if appendonly == "yes":
            assert any(name.startswith("appendonlydir.before-restore-") for name in aside)
            assert redis.Redis(port=server.port).config_get("appendonly")["appendonly"] == "yes"
        # Two more restores keeping one restore's copies: the older copies go.
        for _ in range(2):
            again = cli("restore", snapshot, "--url", url, "--yes", "--keep-asides", "1",
                        "--start-command", start_command(server.port, server.workdir, "--appendonly", appendonly))
            assert again.returncode == 0, again.stdout + again.stderr
        assert "removed old set-aside copy" in again.stdout
        stamps = {name.split(".before-restore-")[1] for name in os.listdir(server.workdir) if ".before-restore-" in name}
        assert len(stamps) == 1, os.listdir(server.workdir)
    finally:
        try:  # the server started by --start-command is not the fixture's process
            redis.Redis(port=server.port).shutdown(nosave=True)
        except redis.exceptions.ConnectionError:
            pass
        server.cleanup()


def test_restore_refuses_bad_files_and_unconfirmed_runs(tmp_path, nova_server):
    url = f"redis://127.0.0.1:{nova_server.port}"
    corrupt = tmp_path / "corrupt.rdb"
    corrupt.write_bytes(b"REDIS0010" + b"\xfa\x05hello" + b"\xff" + b"\x01" * 8)
    done = cli("restore", str(corrupt), "--url", url, "--yes")
    assert done.returncode == 1 and "checksum mismatch" in done.stderr
    redis.Redis(port=nova_server.port).set("still", "here")
    assert redis.Redis(port=nova_server.port).bgsave()
    time.sleep(0.5)
    good = os.path.join(nova_server.workdir, "dump.rdb")
    unconfirmed = cli("restore", good, "--url", url)
    assert unconfirmed.returncode == 2 and "--yes" in unconfirmed.stderr
    assert redis.Redis(port=nova_server.port).get("still") == b"here"  # untouched, still running
    offline = cli("restore", good, "--url", f"redis://127.0.0.1:{servers.free_port()}", "--yes")
    assert offline.returncode == 2 and "--data-dir" in offline.stderr


def test_version_of_the_cli_and_the_server():
    done = cli("--version")
    assert done.returncode == 0 and done.stdout.strip() == server_version().split("v=")[1].split(" ")[0]


def server_version():
    done = subprocess.run([servers.nova_binary(), "--version"], capture_output=True, text=True, timeout=10)
    assert done.returncode == 0 and done.stdout.startswith("NovaCache server v=")
    return done.stdout
