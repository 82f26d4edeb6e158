"""nova-cache-server --install-service: the files deploy/ documents, a valid configuration, a 0700 data
directory, and a unit that systemd-analyze accepts."""
import os
import re
import shutil
import stat
import subprocess

from support import servers

ROOT = servers.ROOT


def scratch_root(tmp_path):
    """A root directory with copies of this system's account files, so that the install creates its user
    there and never on the machine running the tests."""
    os.makedirs(tmp_path / "etc", exist_ok=True)
    for name in ["passwd", "group", "shadow", "gshadow"]:
        if os.path.exists(f"/etc/{name}") and not (tmp_path / "etc" / name).exists():
            shutil.copy(f"/etc/{name}", tmp_path / "etc" / name)
    return tmp_path


def install(tmp_path, *extra):
    scratch_root(tmp_path)
    done = subprocess.run([servers.nova_binary(), "--install-service", "--root", str(tmp_path), *extra],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout


def account(root, name):
    for line in (root / "etc/passwd").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == name:
            return int(fields[2]), int(fields[3])
    return None


def test_install_writes_the_deploy_files(tmp_path):
    out = install(tmp_path)
    unit = (tmp_path / "etc/systemd/system/nova-cache.service").read_text()
    config = (tmp_path / "etc/nova-cache/nova-cache.conf").read_text()
    assert unit == open(os.path.join(ROOT, "deploy/nova-cache.service")).read()
    assert config == open(os.path.join(ROOT, "deploy/nova-cache.conf")).read()
    for line in ["Restart=on-failure", "User=nova-cache", "LimitNOFILE=65536",
                 "ExecStop=/usr/local/bin/nova-cache shutdown --save"]:
        assert line in unit.splitlines()
    for name in ["nova-cache-backup.service", "nova-cache-backup.timer"]:
        assert (tmp_path / "etc/systemd/system" / name).read_text() == open(os.path.join(ROOT, "deploy", name)).read()
    data = tmp_path / "var/lib/nova-cache"
    assert stat.S_IMODE(os.stat(data).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(tmp_path / "var/backups/nova-cache").st_mode) == 0o700
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


def test_install_creates_the_service_user_and_gives_it_its_files(tmp_path):
    if os.getuid() != 0:
        import pytest
        pytest.skip("creating a user needs root")
    system_passwd = open("/etc/passwd").read()
    out = install(tmp_path)
    assert open("/etc/passwd").read() == system_passwd  # the scratch root's files only
    owner = account(tmp_path, "nova-cache")
    assert owner and "created the system user nova-cache" in out
    shell = [line for line in (tmp_path / "etc/passwd").read_text().splitlines() if line.startswith("nova-cache:")][0]
    assert shell.endswith(":/var/lib/nova-cache:/usr/sbin/nologin")
    for path in ["var/lib/nova-cache", "var/backups/nova-cache"]:
        info = os.stat(tmp_path / path)
        assert (info.st_uid, info.st_gid) == owner and stat.S_IMODE(info.st_mode) == 0o700
    config = os.stat(tmp_path / "etc/nova-cache/nova-cache.conf")
    assert (config.st_uid, config.st_gid) == (0, owner[1]) and stat.S_IMODE(config.st_mode) == 0o640
    # A second run finds the user and creates nothing.
    again = install(tmp_path)
    assert "created the system user" not in again and account(tmp_path, "nova-cache") == owner
    # The printed next steps: the binaries as built, then --check-config of the installed file.
    steps = out[out.index("Next, as root:"):].splitlines()[1:]
    install_line = steps[0].split()
    assert install_line[:3] == ["install", "-m", "755"]
    assert all(os.access(path, os.X_OK) for path in install_line[3:5]), install_line
    assert steps[1].split()[1:] == ["--check-config", "/etc/nova-cache/nova-cache.conf"]


def test_install_without_root_names_the_command_to_run_first(tmp_path):
    if os.getuid() != 0:
        import pytest
        pytest.skip("runs the install as another user, which needs root")
    scratch_root(tmp_path)
    os.chmod(tmp_path, 0o777)
    def as_nobody():
        os.setgid(65534)
        os.setuid(65534)
    done = subprocess.run([servers.nova_binary(), "--install-service", "--root", str(tmp_path)],
                          capture_output=True, text=True, timeout=30, preexec_fn=as_nobody)
    assert done.returncode == 1
    assert "the service user 'nova-cache' does not exist and only root can create it" in done.stderr
    assert (f"sudo useradd --prefix {tmp_path} --system --user-group --no-create-home --home-dir /var/lib/nova-cache "
            "--shell /usr/sbin/nologin nova-cache") in done.stderr
    assert not (tmp_path / "etc/systemd").exists()  # nothing half-installed


def test_the_units_are_hardened_like_debians_redis(tmp_path):
    if not shutil.which("systemd-analyze"):
        import pytest
        pytest.skip("systemd-analyze is not installed")
    install(tmp_path)
    for name in ["nova-cache.service", "nova-cache-backup.service"]:
        done = subprocess.run(["systemd-analyze", "security", "--offline=yes", str(tmp_path / "etc/systemd/system" / name)],
                              capture_output=True, text=True, timeout=60)
        if "--offline" in done.stderr and "unrecognized" in done.stderr:
            import pytest
            pytest.skip("this systemd-analyze cannot score unit files offline")
        score = float(re.search(r"Overall exposure level for \S+: ([0-9.]+)", done.stdout).group(1))
        assert score <= 2.0, (name, done.stdout[-3000:])
