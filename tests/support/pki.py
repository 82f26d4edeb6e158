"""Test certificates made with openssl: a CA, certificates it signs for 127.0.0.1 and localhost, a second
CA that signs nothing the servers trust, and an encrypted copy of the server key."""
import os
import subprocess


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def create(directory, names=("server", "client", "server2")):
    """Writes ca.crt/key, NAME.crt/key for each name, other.crt/key and server-enc.key (passphrase
    `keypass`) into `directory`; returns {file name: path} plus {"dir": directory}."""
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=Nova Test CA",
            "-keyout", "ca.key", "-out", "ca.crt", cwd=directory)
    with open(os.path.join(directory, "san.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name in names:
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout", f"{name}.key",
                "-out", f"{name}.csr", cwd=directory)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                "-days", "2", "-extfile", "san.ext", "-out", f"{name}.crt", cwd=directory)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=Other CA",
            "-keyout", "other.key", "-out", "other.crt", cwd=directory)
    openssl("pkey", "-in", "server.key", "-aes256", "-passout", "pass:keypass", "-out", "server-enc.key", cwd=directory)
    return {name: os.path.join(directory, name) for name in os.listdir(directory)} | {"dir": directory}
