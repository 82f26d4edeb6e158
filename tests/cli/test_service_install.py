"""nova-cache-server --install-service: the files deploy/ documents, a valid configuration, a 0700 data
directory, and a unit that systemd-analyze accepts."""
import os
import shutil
import stat
import subprocess

from support import servers

ROOT = servers.ROOT


def install(tmp_path, *extra):
    done = subprocess.run([servers.nova_binary(), "--install-service", "--root", str(tmp_path), *extra],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_install_writes_the_deploy_files(tmp_path):
    out = install(tmp_path)
    unit = (tmp_path / "etc/systemd/system/nova-cache.service").read_text()
    config = (tmp_path / "etc/nova-cache/nova-cache.conf").read_text()
    assert unit == open(os.path.join(ROOT, "deploy/nova-cache.service")).read()
    assert config == open(os.path.join(ROOT, "deploy/nova-cache.conf")).read()
    for line in ["Restart=on-failure", "User=nova-cache", "LimitNOFILE=65536",
                 "ExecStop=/usr/local/bin/nova-cache shutdown --save"]:
        assert line in unit.splitlines()
    data = tmp_path / "var/lib/nova-cache"
    assert stat.S_IMODE(os.stat(data).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(tmp_path / "var/lib").st_mode) == 0o755
    assert "systemctl daemon-reload" in out
    # A second run keeps an edited configuration.
    (tmp_path / "etc/nova-cache/nova-cache.conf").write_text("port 7000\n")
    assert "kept existing" in install(tmp_path)
    assert (tmp_path / "etc/nova-cache/nova-cache.conf").read_text() == "port 7000\n"


def test_default_configuration_is_valid_and_check_config_names_the_line(tmp_path):
    install(tmp_path)
    config = (tmp_path / "etc/nova-cache/nova-cache.conf").read_text()
    local = tmp_path / "local.conf"
    local.write_text(config.replace("dir /var/lib/nova-cache", f"dir {tmp_path / 'var/lib/nova-cache'}"))
    ok = subprocess.run([servers.nova_binary(), "--check-config", str(local)], capture_output=True, text=True)
    assert ok.returncode == 0 and "is valid" in ok.stdout
    broken = tmp_path / "broken.conf"
    broken.write_text("port 6379\n\nmaxmemory-policy sometimes\n")
    bad = subprocess.run([servers.nova_binary(), "--check-config", str(broken)], capture_output=True, text=True)
    assert bad.returncode == 1 and "at line 3" in bad.stderr and "maxmemory-policy sometimes" in bad.stderr


def test_systemd_accepts_the_unit(tmp_path):
    if not shutil.which("systemd-analyze"):
        import pytest
        pytest.skip("systemd-analyze is not installed")
    bin_dir = os.path.dirname(servers.nova_binary())
    install(tmp_path, "--bin-dir", bin_dir)
    unit = tmp_path / "etc/systemd/system/nova-cache.service"
    done = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    problems = [line for line in (done.stdout + done.stderr).splitlines()
                if "nova-cache.service" in line and "User" not in line]
    assert not problems, problems
