"""The project's single-node SLURM, as a pytest fixture (scripts/slurm-testcluster does the work)."""
import os
import shutil
import subprocess

import pytest

from conftest import ROOT

SCRIPT = ROOT / "scripts" / "slurm-testcluster"


def _status():
    return subprocess.run([str(SCRIPT), "status"], capture_output=True, text=True, timeout=60).returncode == 0


@pytest.fixture(scope="session")
def slurm_cluster():
    """A running test cluster: started here (and stopped at the end) unless it was already up.

    Outside CI, a machine where it cannot be started (not root) skips these tests;
    in CI (CI set) that is a failure.
    """
    if _status():
        yield
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        if os.environ.get("CI"):
            pytest.fail("the SLURM test cluster needs root on Debian")
        pytest.skip("the SLURM test cluster needs root on Debian")
    started = subprocess.run([str(SCRIPT), "start"], capture_output=True, text=True, timeout=600)
    if started.returncode != 0:
        pytest.fail("scripts/slurm-testcluster start failed:\n%s%s" % (started.stdout, started.stderr))
    try:
        yield
    finally:
        subprocess.run([str(SCRIPT), "stop"], capture_output=True, text=True, timeout=120)
