"""TLS on tls-port with redis-py (ssl=True) and redis-cli --tls, checked against redis-server 7.0 (Debian
builds it with TLS): client certificates required by default, optional or not at all, a passphrase-protected
key, plain text refused on the TLS port, certificates reloaded by CONFIG SET."""
import os
import shutil
import socket
import ssl
import subprocess
import tempfile

import pytest
import redis

from support import pki as tls_files, servers

PASSWORD = "tls-test-pw"


@pytest.fixture(scope="module")
def pki():
    """A CA, a server certificate for 127.0.0.1, a client certificate, a second CA that signs nothing
    the servers trust, and an encrypted copy of the server key."""
    d = tempfile.mkdtemp(prefix="nova-tls-")
    yield tls_files.create(d)
    shutil.rmtree(d, ignore_errors=True)


def tls_args(pki, port, *extra):
    return ["--tls-port", str(port), "--tls-cert-file", pki["server.crt"], "--tls-key-file", pki["server.key"],
            "--tls-ca-cert-file", pki["ca.crt"], *extra]


@pytest.fixture(scope="module", params=["nova", "redis"])
def server(request, pki):
    port = servers.free_port()
    start = servers.start_nova if request.param == "nova" else servers.start_redis
    process = start(*tls_args(pki, port), password=PASSWORD)
    process.tls_port = port
    yield process
    process.cleanup()


def client(pki, port, cert=True, **kwargs):
    options = dict(host="127.0.0.1", port=port, ssl=True, ssl_ca_certs=pki["ca.crt"], password=PASSWORD,
                   socket_timeout=5, decode_responses=True)
    if cert:
        options.update(ssl_certfile=pki["client.crt"], ssl_keyfile=pki["client.key"])
    options.update(kwargs)
    return redis.Redis(**options)


def test_redis_py_with_client_certificate(server, pki):
    r = client(pki, server.tls_port)
    assert r.set("tls:k", "v") is True
    assert r.get("tls:k") == "v"
    assert r.ping() is True
    r.close()


def test_client_without_certificate_is_refused(server, pki):
    r = client(pki, server.tls_port, cert=False)
    with pytest.raises(redis.exceptions.ConnectionError):
        r.ping()


def test_client_with_certificate_from_another_ca_is_refused(server, pki):
    r = client(pki, server.tls_port, ssl_certfile=pki["other.crt"], ssl_keyfile=pki["other.key"])
    with pytest.raises(redis.exceptions.ConnectionError):
        r.ping()


def test_server_certificate_is_verified_by_the_client(server, pki):
    r = client(pki, server.tls_port, ssl_ca_certs=pki["other.crt"])
    with pytest.raises(redis.exceptions.ConnectionError):
        r.ping()


def test_plain_text_on_the_tls_port_gets_no_reply(server):
    with socket.create_connection(("127.0.0.1", server.tls_port), timeout=5) as s:
        s.sendall(b"PING\r\n")
        try:
            data = s.recv(100)
        except (ConnectionResetError, socket.timeout):
            data = b""
        assert b"PONG" not in data


def test_redis_cli_tls(server, pki):
    base = ["redis-cli", "--tls", "--cacert", pki["ca.crt"], "-h", "127.0.0.1", "-p", str(server.tls_port),
            "--no-auth-warning", "-a", PASSWORD]
    ok = subprocess.run(base + ["--cert", pki["client.crt"], "--key", pki["client.key"], "ping"],
                        capture_output=True, text=True, timeout=20)
    assert ok.stdout.strip() == "PONG", ok.stderr
    refused = subprocess.run(base + ["ping"], capture_output=True, text=True, timeout=20)
    assert "PONG" not in refused.stdout


def test_plain_port_still_serves(server):
    r = redis.Redis(port=server.port, password=PASSWORD, decode_responses=True)
    assert r.get("tls:k") == "v"
    r.close()


@pytest.mark.parametrize("kind", ["nova", "redis"])
@pytest.mark.parametrize("mode", ["no", "optional"])
def test_auth_clients_no_and_optional(kind, mode, pki):
    port = servers.free_port()
    start = servers.start_nova if kind == "nova" else servers.start_redis
    process = start(*tls_args(pki, port, "--tls-auth-clients", mode))
    try:
        without = client(pki, port, cert=False, password=None)
        assert without.ping() is True
        with_cert = client(pki, port, password=None)
        assert with_cert.ping() is True
        without.close()
        with_cert.close()
    finally:
        process.cleanup()


def test_encrypted_key_and_certificate_reload(pki):
    port = servers.free_port()
    process = servers.start_nova("--tls-port", str(port), "--tls-cert-file", pki["server.crt"],
                                 "--tls-key-file", pki["server-enc.key"], "--tls-key-file-pass", "keypass",
                                 "--tls-auth-clients", "no")
    try:
        r = client(pki, port, cert=False, password=None)
        assert r.ping() is True
        admin = redis.Redis(port=process.port, decode_responses=True)
        # A missing file is refused and the old certificate stays in use.
        with pytest.raises(redis.exceptions.ResponseError, match="Unable to update TLS configuration"):
            admin.config_set("tls-cert-file", os.path.join(pki["dir"], "missing.crt"))
        assert admin.config_get("tls-cert-file")["tls-cert-file"] == pki["server.crt"]
        # A new certificate and key: new connections get it.
        # Removing the passphrase alone leaves the encrypted key unreadable: refused, nothing changes.
        with pytest.raises(redis.exceptions.ResponseError, match="Unable to update TLS configuration"):
            admin.config_set("tls-key-file-pass", "")
        admin.execute_command("CONFIG", "SET", "tls-cert-file", pki["server2.crt"], "tls-key-file", pki["server2.key"],
                              "tls-key-file-pass", "")
        context = ssl.create_default_context(cafile=pki["ca.crt"])
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                subject = dict(item[0] for item in tls.getpeercert()["subject"])
                assert subject["commonName"] == "server2"
        # The secrets are not shown by INFO or CLIENT LIST; CONFIG GET of the passphrase is for admins.
        info = admin.execute_command("INFO", "everything")
        assert "keypass" not in str(info)
        r.close()
        admin.close()
    finally:
        process.cleanup()
    assert "keypass" not in process.log()


def test_missing_certificate_stops_startup(pki, tmp_path):
    port = servers.free_port()
    with pytest.raises(RuntimeError, match="Failed to load certificate"):
        servers.start_nova("--tls-port", str(port), "--tls-cert-file", str(tmp_path / "none.crt"),
                           "--tls-key-file", pki["server.key"], "--tls-auth-clients", "no")
    with pytest.raises(RuntimeError, match="tls-ca-cert-file or tls-ca-cert-dir"):
        servers.start_nova("--tls-port", str(port), "--tls-cert-file", pki["server.crt"],
                           "--tls-key-file", pki["server.key"])


def test_tls_clients_are_answered_while_a_script_is_busy(pki, server):
    """A script running past busy-reply-threshold on a plain connection: a TLS client (served by another
    transport, on other threads) gets BUSY, and its SCRIPT KILL stops the script."""
    import threading
    import time

    plain = redis.Redis(port=server.port, password=PASSWORD)
    plain.config_set("busy-reply-threshold", 100)
    outcome = []
    runner = threading.Thread(target=lambda: outcome.append(_eval_endless(server.port)))
    runner.start()
    secure = client(pki, server.tls_port)
    deadline = time.time() + 10
    while True:
        try:
            secure.ping()
        except redis.ResponseError as error:
            assert str(error).startswith("BUSY Redis is busy running a script")
            break
        assert time.time() < deadline, "the script never became busy"
        time.sleep(0.02)
    assert secure.script_kill()
    runner.join(10)
    assert outcome and "Script killed by user" in outcome[0]
    assert secure.ping()


def _eval_endless(port):
    try:
        redis.Redis(port=port, password=PASSWORD).eval("local i = 0 while true do i = i + 1 end", 0)
        return "finished"
    except redis.ResponseError as error:
        return str(error)
