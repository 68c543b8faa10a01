"""The shipped recipes, unchanged, under the test SLURM with ``--runtime charliecloud``: services and native tools
in directory images built from Debian's packages (scripts/build-images), found through ``ORCH_IMAGE_DIR``,
orch's own load generators on the node; results at the end and no process left.

The images stand in for the upstream ones (Debian's redis, MariaDB as mysqld, sysbench, prometheus,
node_exporter, PyPI's chromadb; Grafana is a stand-in server: see scripts/build-images).
"""
import json
import os
import subprocess

import pytest

from conftest import ROOT
from slurm_cluster import slurm_cluster  # noqa: F401  (fixture)
from test_slurm import assert_nothing_left, env, orch, status  # noqa: F401  (fixture, helpers)

pytestmark = pytest.mark.slurm
IMAGES = os.environ.get("ORCH_IMAGE_DIR", "/var/cache/orch/images")
WHERE = ("--site", "local", "--runtime", "charliecloud")


@pytest.fixture(scope="session")
def images():
    """The test images, built once (scripts/build-images skips what is there)."""
    if os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("building the charliecloud test images needs root (mmdebstrap)")
        pytest.skip("building the charliecloud test images needs root (mmdebstrap)")
    built = subprocess.run([str(ROOT / "scripts" / "build-images")], env=dict(os.environ, ORCH_IMAGE_DIR=IMAGES),
                           capture_output=True, text=True, timeout=1200)
    assert built.returncode == 0, built.stderr
    return IMAGES


@pytest.fixture
def ch_env(env, images):  # noqa: F811
    return dict(env, ORCH_IMAGE_DIR=images)


def ch_processes():
    found = subprocess.run(["pgrep", "-af", "ch-run"], capture_output=True, text=True).stdout
    return [line for line in found.splitlines() if "pgrep" not in line]


def run_pair(ch_env, service_recipe, client_recipe, timeout):
    """Submit a shipped service and its shipped client aimed at it; wait for the client; stop the service."""
    submitted = orch(ch_env, "submit", str(ROOT / "recipes" / service_recipe), *WHERE)
    assert submitted.returncode == 0, submitted.stderr
    service = submitted.stdout.split()[1]
    client = orch(ch_env, "submit", str(ROOT / "recipes" / client_recipe), *WHERE, "--target", service)
    assert client.returncode == 0, client.stderr
    client_id = client.stdout.split()[1]
    try:
        done = orch(ch_env, "wait", client_id, "--state", "done", "--timeout", str(timeout), timeout=timeout + 60)
        logs = orch(ch_env, "logs", client_id).stdout + orch(ch_env, "logs", service).stdout
        assert done.returncode == 0, done.stderr + logs
        assert "ch-run" in orch(ch_env, "logs", service).stdout  # the service ran in its image
        return service, client_id, json.loads(orch(ch_env, "results", client_id, "--format", "json").stdout)
    finally:
        orch(ch_env, "cancel", service)
        assert_nothing_left(status(ch_env, service)["run_dir"], seconds=60)


def test_the_shipped_redis_study_runs_end_to_end(ch_env):
    ran = orch(ch_env, "run", str(ROOT / "recipes/experiments/redis-study.yaml"), *WHERE, "--wait", timeout=900)
    run_id = ran.stdout.split()[0] if ran.stdout.split() else ""
    members = json.loads(orch(ch_env, "status", "--json", run_id).stdout) if run_id else []
    assert ran.returncode == 0, ran.stderr + "".join(orch(ch_env, "logs", m["id"]).stdout for m in members[1:])
    documents = json.loads(orch(ch_env, "results", run_id, "--format", "json").stdout)
    assert {(d["parameters"]["clients"], d["parameters"]["pipeline"]) for d in documents} == {
        (c, p) for c in (1, 10, 50) for p in (1, 16)}
    assert all(d["run"]["partial"] is False and d["throughput"]["requests_per_s"] > 0 for d in documents)
    # redis-benchmark ran in the image, through the runtime's words
    assert all("ch-run" in json.dumps(d["raw"]["native_output"][0]["command"]) for d in documents), documents[0]["raw"]
    for member in members[1:]:
        # every member's node_exporter ran in its own image, beside the member's
        assert "did not start" not in orch(ch_env, "logs", member["id"]).stdout
        assert_nothing_left(member["run_dir"], seconds=60)
    assert not ch_processes()


def test_the_shipped_mysql_service_and_client_run_end_to_end(ch_env):
    _, _, documents = run_pair(ch_env, "services/mysql.yaml", "clients/mysql_benchmark.yaml", timeout=600)
    assert len(documents) == 1 and documents[0]["run"]["partial"] is False
    assert documents[0]["throughput"]["transactions_per_s"] > 0
    assert "ch-run" in json.dumps([o["command"] for o in documents[0]["raw"]["native_output"]])
    assert not ch_processes()


def test_the_shipped_chroma_service_and_client_run_end_to_end(ch_env):
    _, _, documents = run_pair(ch_env, "services/chroma.yaml", "clients/chroma_benchmark.yaml", timeout=900)
    assert len(documents) == 1 and documents[0]["run"]["partial"] is False
    assert not ch_processes()
