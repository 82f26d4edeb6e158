"""redis-cli (Debian redis-tools, 7.0) against nova-cache-server: one-shot commands, --scan, and an
interactive session with command hints built from COMMAND DOCS."""
import subprocess

import pexpect


def cli(port, *args, stdin=None):
    result = subprocess.run(["redis-cli", "-p", str(port), *args], input=stdin, capture_output=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return result.stdout.decode()


def test_one_shot_commands(nova_server):
    port = nova_server.port
    cli(port, "FLUSHALL")
    assert cli(port, "SET", "greeting", "hello").strip() == "OK"
    assert cli(port, "GET", "greeting").strip() == "hello"
    assert cli(port, "INCR", "n").strip() == "1"
    assert cli(port, "GET", "missing").strip() == ""
    stats = cli(port, "INFO", "stats")
    assert "keyspace_hits:" in stats and "total_commands_processed:" in stats
    assert "(error) ERR unknown command 'NOPE'" in cli(port, "NOPE") or "ERR unknown command" in cli(port, "NOPE")


def test_scan_mode(nova_server):
    port = nova_server.port
    cli(port, "FLUSHALL")
    keys = [f"user:{i}" for i in range(300)] + [f"other:{i}" for i in range(50)]
    cli(port, stdin="".join(f"SET {k} 1\n" for k in keys).encode())
    listed = cli(port, "--scan").split()
    assert sorted(listed) == sorted(keys)
    matched = cli(port, "--scan", "--pattern", "user:1*").split()
    assert sorted(matched) == sorted(k for k in keys if k.startswith("user:1"))


def test_pipe_mode(nova_server):
    port = nova_server.port
    cli(port, "FLUSHALL")
    payload = "".join(f"*3\r\n$3\r\nSET\r\n${len(f'p{i}')}\r\np{i}\r\n$1\r\nx\r\n" for i in range(10000))
    out = cli(port, "--pipe", stdin=payload.encode())
    assert "errors: 0, replies: 10000" in out
    assert cli(port, "DBSIZE").strip() == "10000"


def test_interactive_session_with_hints(nova_server):
    child = pexpect.spawn("redis-cli", ["-p", str(nova_server.port)], encoding="utf-8", timeout=10,
                          dimensions=(40, 200))
    # linenoise reads the terminal raw: Enter is a carriage return.
    child.sendline = lambda line: child.send(line + "\r")
    prompt = f"127.0.0.1:{nova_server.port}>"
    child.expect_exact(prompt)
    child.sendline("SET interactive yes")
    child.expect_exact("OK")
    child.expect_exact(prompt)
    child.sendline("GET interactive")
    child.expect_exact('"yes"')
    child.expect_exact(prompt)
    # Typing a command name shows its arguments as a hint (from COMMAND DOCS).
    child.send("SET ")
    child.expect("key value")
    child.sendcontrol("u")
    child.sendline("SELECT 3")
    child.expect_exact(f"127.0.0.1:{nova_server.port}[3]>")
    child.sendline("HELP GET")
    child.expect("Get the value of a key")
    child.sendline("QUIT")
    child.expect(pexpect.EOF)
