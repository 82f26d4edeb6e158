"""The HTTP listener from an attacker's side: garbage, oversized headers, requests cut off, connections by
the hundred, and HTTPS with the server's certificates. The server keeps serving RESP and HTTP and its
memory comes back."""
import os
import random
import shutil
import socket
import ssl
import tempfile
import time
import urllib.request

import pytest
import redis

from support import pki as tls_files, servers


def http_get(port, path="/metrics", context=None, scheme="http"):
    return urllib.request.urlopen(f"{scheme}://127.0.0.1:{port}{path}", timeout=10, context=context)


def test_garbage_cut_requests_and_connection_floods():
    http = servers.free_port()
    server = servers.start_nova("--save", "", "--http-port", str(http))
    try:
        r = redis.Redis(port=server.port)
        rng = random.Random(22)
        for i in range(80):
            with socket.create_connection(("127.0.0.1", http), timeout=5) as s:
                kind = i % 4
                if kind == 0:
                    s.sendall(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 2000))))
                elif kind == 1:
                    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # never finished
                elif kind == 2:
                    s.sendall(b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\n\r\n")
                else:
                    s.sendall(b"POST /metrics HTTP/1.1\r\nContent-Length: 10000000\r\n\r\n" + b"x" * 65536)
                s.settimeout(0.3)
                try:
                    s.recv(65536)
                except (socket.timeout, ConnectionResetError):
                    pass
        assert r.ping()
        assert http_get(http).status == 200
        before = r.info("memory")["used_memory"]
        # More connections than the listener keeps (128): the extra ones are closed, nothing grows.
        held = [socket.create_connection(("127.0.0.1", http), timeout=5) for _ in range(300)]
        time.sleep(1)
        closed = 0
        for s in held:
            s.setblocking(False)
            try:
                if s.recv(1) == b"":
                    closed += 1
            except (BlockingIOError, ConnectionResetError) as error:
                closed += isinstance(error, ConnectionResetError)
        assert closed >= 300 - 128
        for s in held:
            s.close()
        # Pipelined requests on one connection are answered in order.
        with socket.create_connection(("127.0.0.1", http), timeout=5) as s:
            s.sendall(b"GET /api/stats HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        assert data.startswith(b"HTTP/1.1 200 OK") and b"HTTP/1.1 404 Not Found" in data
        assert data.index(b"HTTP/1.1 200") < data.index(b"HTTP/1.1 404")
        assert http_get(http).status == 200
        assert r.info("memory")["used_memory"] < before + (4 << 20)
        assert server.alive()
        r.close()
    finally:
        server.cleanup()


@pytest.fixture(scope="module")
def pki():
    d = tempfile.mkdtemp(prefix="nova-http-tls-")
    yield tls_files.create(d, names=("server", "client"))
    shutil.rmtree(d, ignore_errors=True)


def test_https_with_the_servers_certificates(pki):
    http, tls = servers.free_port(), servers.free_port()
    server = servers.start_nova("--save", "", "--http-port", str(http), "--tls-port", str(tls),
                                "--tls-cert-file", pki["server.crt"], "--tls-key-file", pki["server.key"],
                                "--tls-ca-cert-file", pki["ca.crt"], "--tls-auth-clients", "optional")
    try:
        context = ssl.create_default_context(cafile=pki["ca.crt"])
        assert http_get(http, context=context, scheme="https").status == 200
        assert b"redis_up 1" in http_get(http, context=context, scheme="https").read()
        other = ssl.create_default_context(cafile=pki["other.crt"])
        with pytest.raises(urllib.error.URLError):
            http_get(http, context=other, scheme="https")
        # Plain HTTP on the HTTPS port gets no page.
        with socket.create_connection(("127.0.0.1", http), timeout=5) as s:
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            s.settimeout(5)
            try:
                reply = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                reply = b""
            assert b"redis_up" not in reply
        assert "Ready to accept connections https" in server.log()
    finally:
        server.cleanup()
