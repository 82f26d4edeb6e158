"""Running the server: configuration file and flags, defaults, CONFIG REWRITE, SHUTDOWN and SIGTERM."""
import os
import signal
import socket
import subprocess
import tempfile
import time

import pytest
import redis

from support import servers


def test_defaults_without_any_configuration():
    """No flags at all: 127.0.0.1:6379 and ./data, unless 6379 is taken on this machine."""
    workdir = tempfile.mkdtemp(prefix="nova-default-")
    probe = socket.socket()
    try:
        probe.bind(("127.0.0.1", 6379))
    except OSError:
        pytest.skip("port 6379 is in use on this machine")
    finally:
        probe.close()
    process = subprocess.Popen([servers.nova_binary()], cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        client = redis.Redis(port=6379)
        deadline = time.time() + 10
        while True:
            try:
                assert client.ping()
                break
            except redis.ConnectionError:
                assert time.time() < deadline
                time.sleep(0.05)
        assert client.config_get("port") == {"port": "6379"}
        assert client.config_get("bind") == {"bind": "127.0.0.1"}
        assert client.config_get("dir")["dir"] == os.path.join(os.path.realpath(workdir), "data")
        assert os.path.isdir(os.path.join(workdir, "data"))
        client.close()
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_config_file_then_flags_override():
    config = "port 1\nmaxmemory 10mb\nmaxmemory-policy allkeys-lru\ndatabases 4\nrequirepass filepass\n"
    server = servers.start_nova(config_text=config, password="flagpass")
    try:
        client = redis.Redis(port=server.port, password="flagpass")
        assert client.config_get("maxmemory") == {"maxmemory": "10485760"}
        assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "allkeys-lru"}
        assert client.config_get("databases") == {"databases": "4"}
        with pytest.raises(redis.ResponseError, match="DB index is out of range"):
            client.execute_command("SELECT", "4")
        assert client.info("server")["config_file"].endswith("nova.conf")
    finally:
        server.cleanup()


def test_bad_config_file_is_reported_with_its_line():
    workdir = tempfile.mkdtemp()
    path = os.path.join(workdir, "bad.conf")
    with open(path, "w") as f:
        f.write("port 7000\n# comment\nmaxmemory lots\n")
    result = subprocess.run([servers.nova_binary(), path], capture_output=True, timeout=10)
    assert result.returncode != 0
    assert b"at line 3" in result.stderr and b"maxmemory lots" in result.stderr
    assert b"argument must be a memory value" in result.stderr
    check = subprocess.run([servers.nova_binary(), "--check-config", path], capture_output=True, timeout=10)
    assert check.returncode != 0 and b"at line 3" in check.stderr


def test_a_log_file_that_cannot_be_opened_stops_the_start_as_in_redis():
    """redis-server refuses to start (exit 1, "Can't open the log file"); so do we, and --check-config says
    it. A log file that can be created is (fopen "a"), as redis-server does."""
    workdir = tempfile.mkdtemp()
    missing = os.path.join(workdir, "no-such-dir", "nova.log")
    for argv in ([servers.nova_binary(), "--port", str(servers.free_port()), "--logfile", missing],
                 ["redis-server", "--port", str(servers.free_port()), "--logfile", missing]):
        result = subprocess.run(argv, capture_output=True, timeout=10, cwd=workdir)
        assert result.returncode == 1, (argv[0], result)
        assert b"Can't open the log file: No such file or directory" in result.stdout + result.stderr
    path = os.path.join(workdir, "nova.conf")
    with open(path, "w") as f:
        f.write(f"port 7000\nlogfile {missing}\n")
    check = subprocess.run([servers.nova_binary(), "--check-config", path], capture_output=True, timeout=10)
    assert check.returncode == 1 and b"Can't open the log file" in check.stderr
    with open(path, "w") as f:
        f.write(f"port 7000\nlogfile {os.path.join(workdir, 'created.log')}\n")
    check = subprocess.run([servers.nova_binary(), "--check-config", path], capture_output=True, timeout=10)
    assert check.returncode == 0, check.stderr


def test_a_flag_error_names_the_flag():
    result = subprocess.run([servers.nova_binary(), "--port", "6379", "--maxmemory", "lots"], capture_output=True, timeout=10)
    assert result.returncode == 1
    assert b"at flag '--maxmemory'" in result.stderr and b">>> '--maxmemory lots'" in result.stderr
    assert b"argument must be a memory value" in result.stderr and b"at line" not in result.stderr


def test_a_bad_user_line_is_reported_with_its_line():
    workdir = tempfile.mkdtemp()
    path = os.path.join(workdir, "users.conf")
    with open(path, "w") as f:
        f.write(f"port {servers.free_port()}\nsave \"\"\n\nuser bob on >pw ~* +@all badrule\n")
    for argv in ([servers.nova_binary(), path], [servers.nova_binary(), "--check-config", path]):
        result = subprocess.run(argv, capture_output=True, timeout=10, cwd=workdir)
        assert result.returncode == 1, result
        assert b"Reading the configuration file, at line 4\n>>> 'user bob on >pw ~* +@all badrule'\n" in result.stderr
        assert b"Error in applying operation 'badrule': Syntax error" in result.stderr
    flag = subprocess.run([servers.nova_binary(), "--port", str(servers.free_port()), "--user", "bob", "on", "bad"],
                          capture_output=True, timeout=10, cwd=workdir)
    assert flag.returncode == 1 and b"at flag '--user'\n>>> '--user bob on bad'" in flag.stderr


def test_settings_without_effect_are_warned_about():
    workdir = tempfile.mkdtemp()
    path = os.path.join(workdir, "inert.conf")
    with open(path, "w") as f:
        f.write("save \"\"\ncluster-enabled yes\nactivedefrag yes\nmasterauth hunter2\nappendonly no\n")
    check = subprocess.run([servers.nova_binary(), "--check-config", path], capture_output=True, timeout=10)
    assert check.returncode == 0 and b"is valid" in check.stdout
    warnings = check.stderr.decode().splitlines()
    assert [w.split(" ")[1] for w in warnings] == ["cluster-enabled", "activedefrag", "masterauth"], warnings
    assert "hunter2" not in check.stderr.decode() and "shard with a Redis or Valkey Cluster" in warnings[0]
    server = servers.start_nova(config_text="cluster-enabled yes\n")
    try:
        assert "cluster-enabled 'yes' has no effect in NovaCache" in server.log()
        assert "activedefrag" not in server.log()  # left at its default
    finally:
        server.cleanup()


def test_commands_refused_with_oom_are_logged_once_a_minute():
    server = servers.start_nova("--maxmemory", "1mb", "--save", "")
    try:
        r = redis.Redis(port=server.port)
        refused = 0
        for i in range(400):
            try:
                r.set(f"k{i}", "x" * 10_000)
            except redis.exceptions.OutOfMemoryError:
                refused += 1
        assert refused > 100
        deadline = time.time() + 5
        while "with OOM" not in server.log() and time.time() < deadline:
            time.sleep(0.05)
        lines = [line for line in server.log().splitlines() if "with OOM" in line]
        # The first refusal at once, the rest summed up in the next line a minute later at the earliest.
        assert len(lines) == 1 and "Refused 1 command(s) with OOM" in lines[0] and "maxmemory 1048576" in lines[0], lines
    finally:
        server.cleanup()


def test_config_rewrite_keeps_comments_and_updates_values():
    config = "# my settings\nport 1\nmaxmemory 1mb\n"
    server = servers.start_nova(config_text=config)
    try:
        client = redis.Redis(port=server.port)
        client.config_set("maxmemory", "2mb")
        client.config_set("maxmemory-policy", "allkeys-lfu")
        assert client.config_rewrite()
        with open(os.path.join(server.workdir, "nova.conf")) as f:
            text = f.read()
        assert "# my settings" in text
        assert "maxmemory 2097152" in text or "maxmemory 2mb" in text
        assert "maxmemory-policy allkeys-lfu" in text
    finally:
        server.cleanup()


def test_shutdown_command_stops_the_server():
    server = servers.start_nova("--save", "")
    client = redis.Redis(port=server.port)
    client.shutdown(nosave=True)  # redis-py treats the closed connection as success
    assert server.process.wait(timeout=10) == 0


def test_sigterm_is_a_graceful_shutdown():
    server = servers.start_nova("--save", "3600 1")
    client = redis.Redis(port=server.port)
    client.set("k", "v")
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=10) == 0
    log = server.log()
    # As redis-server: the request is logged first, then the save, then the exit.
    received = log.index("Received shutdown request, scheduling shutdown...")
    assert received < log.index("DB saved on disk") < log.index("ready to exit"), log
    server.cleanup()


@pytest.mark.parametrize("log_format", ["json", "logfmt"])
def test_log_formats_for_log_shippers(log_format):
    server = servers.start_nova("--log-format", log_format, "--cluster-enabled", "yes")
    try:
        r = redis.Redis(port=server.port)
        assert r.config_get("log-format") == {"log-format": log_format}
        with pytest.raises(redis.ResponseError, match="can't set immutable config"):
            r.config_set("log-format", "legacy")
        r.shutdown(nosave=True)
    except redis.exceptions.ConnectionError:
        pass
    server.process.wait(timeout=10)
    lines = [line for line in server.log().splitlines() if line.strip()]
    server.cleanup()
    assert len(lines) >= 4
    if log_format == "json":
        import json
        records = [json.loads(line) for line in lines]
        for line in lines:  # no key twice (json.loads would keep the last silently)
            keys = json.loads(line, object_pairs_hook=lambda pairs: [k for k, _ in pairs])
            assert len(keys) == len(set(keys)), line
        assert all({"timestamp", "pid", "level", "message"} <= set(record) for record in records)
        assert records[0]["message"] == "NovaCache server starting" and records[0]["level"] == "notice"
        assert any(record["level"] == "warning" and "cluster-enabled" in record["message"] for record in records)
        assert records[-1]["message"] == "NovaCache is now ready to exit, bye bye..."
    else:
        assert all(line.startswith("timestamp=") and " level=" in line and " message=" in line for line in lines)
        assert 'message="NovaCache server starting"' in lines[0]


def test_maxclients_refuses_extra_connections():
    server = servers.start_nova("--maxclients", "2")
    try:
        first = socket.create_connection(("127.0.0.1", server.port))
        second = socket.create_connection(("127.0.0.1", server.port))
        time.sleep(0.1)
        third = socket.create_connection(("127.0.0.1", server.port))
        third.settimeout(3)
        assert third.recv(100) == b"-ERR max number of clients reached\r\n"
        for s in (first, second, third):
            s.close()
    finally:
        server.cleanup()


def test_idle_clients_time_out():
    server = servers.start_nova("--timeout", "1")
    try:
        s = socket.create_connection(("127.0.0.1", server.port))
        s.settimeout(5)
        start = time.time()
        assert s.recv(100) == b""
        assert time.time() - start < 4
    finally:
        server.cleanup()


@pytest.mark.parametrize("kind", ["nova", "redis"])
def test_query_buffer_limit_disconnects_a_client_that_never_finishes_a_command(kind):
    start = servers.start_nova if kind == "nova" else servers.start_redis
    server = start("--client-query-buffer-limit", "1mb")
    try:
        hog = socket.create_connection(("127.0.0.1", server.port))
        hog.settimeout(10)
        # A bulk announced as 100 MB (allowed by proto-max-bulk-len) fed 64 KB at a time.
        hog.sendall(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100000000\r\n")
        sent = 0
        closed = False
        try:
            while sent < 8 * 1024 * 1024:
                hog.sendall(b"x" * 65536)
                sent += 65536
        except (BrokenPipeError, ConnectionResetError):
            closed = True
        if not closed:
            try:
                closed = hog.recv(100) == b""
            except ConnectionResetError:
                closed = True
        assert closed and sent < 8 * 1024 * 1024
        hog.close()
        other = redis.Redis(port=server.port)
        assert other.ping() and other.get("k") is None
        if kind == "nova":
            assert "max query buffer" in server.log()
    finally:
        server.cleanup()


def test_config_set_port_moves_the_listener():
    server = servers.start_nova("--save", "")
    try:
        client = redis.Redis(port=server.port)
        taken = socket.socket()
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        with pytest.raises(redis.ResponseError, match="Unable to listen on this port"):
            client.config_set("port", taken.getsockname()[1])
        taken.close()
        assert client.config_get("port") == {"port": str(server.port)}
        new_port = servers.free_port()
        assert client.config_set("port", new_port)
        moved = redis.Redis(port=new_port)
        assert moved.ping()
        assert moved.info("server")["tcp_port"] == new_port
        with pytest.raises(redis.ConnectionError):
            redis.Redis(port=server.port).ping()
        assert client.ping(), "existing connections stay open"
    finally:
        server.cleanup()
