"""Under the real single-node SLURM: submit, follow, talk to the service, cancel, leave nothing behind."""
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from conftest import ROOT
from slurm_cluster import slurm_cluster  # noqa: F401  (fixture)

pytestmark = pytest.mark.slurm

CHROMA_BIN = os.path.join(os.environ.get("ORCH_CHROMA_VENV", "/opt/orch/chroma-venv"), "bin")


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def env(tmp_path, slurm_cluster):  # noqa: F811
    home = tmp_path / "orch-home"
    environment = dict(os.environ, ORCH_HOME=str(home), PYTHONPATH=str(ROOT))
    environment["PATH"] = os.pathsep.join((CHROMA_BIN, environment["PATH"]))
    yield environment
    # whatever a test left running is cancelled, so the next test has the node to itself
    subprocess.run([sys.executable, "-m", "orch", "cancel", "--all"], env=environment, capture_output=True, timeout=120)


def orch(env, *args, timeout=180):
    return subprocess.run([sys.executable, "-m", "orch", *args], env=env, capture_output=True, text=True, timeout=timeout)


def recipe(tmp_path, text, name="recipe.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def submit(env, path, *extra):
    result = orch(env, "submit", path, "--site", "local", "--runtime", "host", *extra)
    assert result.returncode == 0, result.stderr
    job_id, run_id = result.stdout.split()
    return job_id, run_id


def status(env, run_id):
    result = orch(env, "status", "--json", run_id)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)[0]


def processes_of(run_dir):
    found = subprocess.run(["pgrep", "-af", run_dir], capture_output=True, text=True).stdout
    return [line for line in found.splitlines() if "pgrep" not in line]


def assert_nothing_left(run_dir, seconds=20):
    deadline = time.monotonic() + seconds
    while processes_of(run_dir) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert processes_of(run_dir) == []


def service_yaml(name, port, extra="", time_limit="00:10:00", health="{timeout: 60, retries: 60, interval: 1}"):
    return (
        "service:\n  name: %s\n  ports: [%d]\n  resources:\n    time: \"%s\"\n    mem: 1G\n"
        "  health_check: %s\n%s" % (name, port, time_limit, health, extra)
    )


def redis_check(endpoint, record):
    cli = ["redis-cli", "-h", endpoint["host"], "-p", str(endpoint["port"])]
    assert subprocess.run(cli + ["ping"], capture_output=True, text=True).stdout.strip() == "PONG"
    assert subprocess.run(cli + ["set", "orch", "works"], capture_output=True, text=True).stdout.strip() == "OK"
    assert subprocess.run(cli + ["get", "orch"], capture_output=True, text=True).stdout.strip() == "works"


def mysql_check(endpoint, record):
    query = subprocess.run(
        ["mariadb", "-h", endpoint["host"], "-P", str(endpoint["port"]), "-u", "bench", "-pbench-pw", "bench_db",
         "-N", "-e", "SELECT note FROM orch_marker WHERE id = 1"],
        capture_output=True, text=True, timeout=30,
    )
    assert query.returncode == 0, query.stderr
    assert query.stdout.strip() == "made by init_script"


def prometheus_check(endpoint, record):
    url = "http://%s:%d/api/v1/query?query=up" % (endpoint["host"], endpoint["port"])
    with urllib.request.urlopen(url, timeout=10) as response:
        body = json.load(response)
    assert body["status"] == "success"


def chroma_check(endpoint, record):
    with urllib.request.urlopen("http://%s:%d/api/v2/heartbeat" % (endpoint["host"], endpoint["port"]), timeout=10) as response:
        assert json.load(response)["nanosecond heartbeat"] > 0


MYSQL_EXTRA = (
    "  root_password: \"r00t pw'\"\n  database: bench_db\n  user: bench\n  password: bench-pw\n"
    "  init_script: |\n    CREATE TABLE bench_db.orch_marker (id INT PRIMARY KEY, note VARCHAR(40));\n"
    "    INSERT INTO bench_db.orch_marker VALUES (1, 'made by init_script');\n"
)

SERVICES = [
    ("redis", "", redis_check),
    ("mysql", MYSQL_EXTRA, mysql_check),
    ("prometheus", "  scrape_interval: 2s\n", prometheus_check),
    ("chroma", "", chroma_check),
]


@pytest.mark.parametrize("kind,extra,check", SERVICES, ids=[s[0] for s in SERVICES])
def test_service_starts_answers_and_cancels_cleanly(kind, extra, check, env, tmp_path):
    port = free_port()
    path = recipe(tmp_path, service_yaml(kind, port, extra, health="{timeout: 120, retries: 120, interval: 1}"))
    job_id, run_id = submit(env, path)

    waited = orch(env, "wait", run_id, "--state", "ready", "--timeout", "150")
    logs = orch(env, "logs", run_id).stdout
    assert waited.returncode == 0, waited.stderr + logs
    record = status(env, run_id)
    assert (record["job_id"], record["kind"], record["state"], record["ready"]) == (job_id, kind, "running", True)
    endpoint = record["endpoint"]
    assert (endpoint["host"], endpoint["port"], endpoint["job_id"]) == ("127.0.0.1", port, job_id)
    published = json.loads((tmp_path / "orch-home" / "endpoints" / (kind + ".json")).read_text())
    assert published["orch_id"] == run_id
    check(endpoint, record)

    cancelled = orch(env, "cancel", run_id)
    assert cancelled.returncode == 0, cancelled.stderr
    assert status(env, run_id)["state"] == "cancelled"
    assert_nothing_left(record["run_dir"])
    assert not (tmp_path / "orch-home" / "endpoints" / (kind + ".json")).exists()


def test_status_table_shows_the_running_service(env, tmp_path):
    port = free_port()
    job_id, run_id = submit(env, recipe(tmp_path, service_yaml("redis", port)))
    assert orch(env, "wait", run_id, "--state", "ready", "--timeout", "60").returncode == 0
    table = orch(env, "status").stdout.splitlines()
    assert table[0].split() == ["ID", "JOB", "KIND", "STATE", "NODE", "ELAPSED", "ENDPOINT"]
    row = next(line for line in table if line.startswith(run_id))
    assert job_id in row and "running (ready)" in row and "127.0.0.1:%d" % port in row


def test_binary_that_exits_at_once_ends_failed_with_its_reason(env, tmp_path):
    path = recipe(tmp_path, service_yaml("redis", free_port(), "  command: \"false\"\n"))
    _, run_id = submit(env, path)
    waited = orch(env, "wait", run_id, "--state", "ready", "--timeout", "60")
    assert waited.returncode == 1 and "ended failed: redis exited with status 1" in waited.stderr
    record = status(env, run_id)
    assert record["state"] == "failed"
    assert "redis exited with status 1 before it was ready" in record["reason"]
    assert "redis exited with status 1 before it was ready" in orch(env, "logs", run_id).stdout
    assert "failed: " in orch(env, "status").stdout


def test_service_that_never_gets_ready_fails_after_its_health_timeout(env, tmp_path):
    text = service_yaml("redis", free_port(), "  command: sleep\n  args: [\"600\"]\n", health="{timeout: 6, retries: 3, interval: 1}")
    _, run_id = submit(env, recipe(tmp_path, text))
    started = time.monotonic()
    waited = orch(env, "wait", run_id, "--state", "done", "--timeout", "90")
    elapsed = time.monotonic() - started
    assert waited.returncode == 1 and "not ready after" in waited.stderr
    assert elapsed < 45, "failed after %.0f s, not after its 6 s health timeout" % elapsed
    record = status(env, run_id)
    assert record["state"] == "failed" and "redis not ready after" in record["reason"]
    assert_nothing_left(record["run_dir"])


def test_job_at_its_time_limit_ends_failed_timeout_after_a_clean_teardown(env, tmp_path):
    # SLURM sends --signal's TERM up to a minute early; a 2-minute limit gets it at about 60 s
    _, run_id = submit(env, recipe(tmp_path, service_yaml("redis", free_port(), time_limit="2")))
    assert orch(env, "wait", run_id, "--state", "ready", "--timeout", "60").returncode == 0
    waited = orch(env, "wait", run_id, "--state", "done", "--timeout", "200", timeout=240)
    assert waited.returncode == 1
    record = status(env, run_id)
    assert record["state"] == "failed" and record["reason"].startswith("TIMEOUT"), record
    finished = json.loads((tmp_path / "orch-home" / "runs" / run_id / "state" / "finished").read_text())
    assert finished["reason"] == "TIMEOUT: time limit reached"
    assert_nothing_left(record["run_dir"])
    assert "stop requested (TIMEOUT: time limit reached)" in orch(env, "logs", run_id).stdout


def test_gpu_recipe_schedules_on_the_gpu_partition(env, tmp_path):
    text = service_yaml("redis", free_port()).replace("    mem: 1G\n", "    mem: 1G\n    partition: gpu\n    gres: \"gpu:1\"\n")
    job_id, run_id = submit(env, recipe(tmp_path, text))
    assert orch(env, "wait", run_id, "--state", "ready", "--timeout", "60").returncode == 0
    shown = subprocess.run(["scontrol", "show", "job", "-o", job_id], capture_output=True, text=True).stdout
    assert "Partition=gpu" in shown and "gpu:1" in shown


def test_sbatch_refusal_is_exit_4_with_slurms_words_and_no_registry_entry(env, tmp_path):
    text = service_yaml("redis", free_port()).replace("    mem: 1G\n", "    mem: 1G\n    partition: nosuchpartition\n")
    result = orch(env, "submit", recipe(tmp_path, text), "--site", "local", "--runtime", "host")
    assert result.returncode == 4 and result.stdout == ""
    assert result.stderr.startswith("orch: sbatch: ") and "partition" in result.stderr.lower()
    assert not os.listdir(tmp_path / "orch-home" / "runs")


def test_bad_recipe_submits_nothing(env, tmp_path):
    result = orch(env, "submit", recipe(tmp_path, "service:\n  name: redis\n  ports: [0]\n"))
    assert result.returncode == 2 and ":3: service.ports[0]:" in result.stderr
    assert not (tmp_path / "orch-home").exists()


def test_wait_times_out_with_a_reason(env, tmp_path):
    text = service_yaml("redis", free_port(), "  command: sleep\n  args: [\"600\"]\n", health="{timeout: 300, retries: 300, interval: 1}")
    _, run_id = submit(env, recipe(tmp_path, text))
    waited = orch(env, "wait", run_id, "--state", "ready", "--timeout", "3")
    assert waited.returncode == 1 and "after 3.0 s" in waited.stderr


def test_status_survives_a_lost_scheduler_view(env, tmp_path):
    """Once SLURM forgets a job, the job's own markers still say how it ended."""
    from orch.lifecycle import reconcile

    assert reconcile("running", None, {"exit_code": 143, "reason": "stopped by signal"}) == ("cancelled", "stopped by signal")
    assert reconcile("running", None, {"exit_code": 143, "reason": "TIMEOUT: time limit reached"})[0] == "failed"
    assert reconcile("running", None, {"exit_code": 0, "reason": "done"}) == ("completed", "done")


# --- --remote: the same commands over ssh to an sshd on loopback


def test_remote_submission_through_ssh(env, tmp_path, sshd):
    port, client_config = sshd
    env = dict(env, ORCH_SSH_CONFIG=client_config)
    remote = "root@127.0.0.1:%d" % port
    service_port = free_port()
    result = orch(env, "submit", recipe(tmp_path, service_yaml("redis", service_port)), "--site", "local", "--runtime", "host",
                  "--remote", remote)
    assert result.returncode == 0, result.stderr
    job_id, run_id = result.stdout.split()
    try:
        assert orch(env, "wait", run_id, "--state", "ready", "--timeout", "60").returncode == 0
        record = status(env, run_id)
        assert record["remote"] == remote and record["run_dir"].startswith(os.path.expanduser("~root") + "/orch-runs/")
        redis_check(record["endpoint"], record)
        assert "Ready to accept connections" in orch(env, "logs", run_id).stdout
        assert orch(env, "cancel", run_id).returncode == 0
        assert status(env, run_id)["state"] == "cancelled"
        assert_nothing_left(record["run_dir"])
    finally:
        import shutil

        shutil.rmtree(os.path.join(os.path.expanduser("~root"), "orch-runs", run_id), ignore_errors=True)


def test_unreachable_login_node_is_exit_3_and_no_registry_entry(env, tmp_path):
    env = dict(env, ORCH_SSH_CONFIG="/dev/null")
    result = orch(env, "submit", recipe(tmp_path, service_yaml("redis", free_port())), "--remote", "nobody@127.0.0.1:%d" % free_port())
    assert result.returncode == 3 and result.stderr.startswith("orch: ssh nobody@127.0.0.1: ")
    assert not (tmp_path / "orch-home" / "runs").exists() or not os.listdir(tmp_path / "orch-home" / "runs")
