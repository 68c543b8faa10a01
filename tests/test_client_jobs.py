"""Where each part of a client runs: orch's load generator on the node with the Python that submitted it,
outside any image; only a native load tool (redis-benchmark, sysbench, pgbench) inside the client's image."""
import subprocess
import time

import pytest

from conftest import ROOT, shellcheck
from orch import render_job
from orch.kinds import CLIENT_KINDS
from orch.recipe import parse_job

PYTHON = "/opt/venvs/orch/bin/python3"


def client_script(kind, runtime="apptainer", python=PYTHON, site="meluxina", extra=""):
    return render_job(parse_job("client:\n  name: %s\n%s" % (kind, extra), site=site, runtime=runtime, python=python))


def started(script):
    return next(line for line in script.splitlines() if line.startswith("setsid ") and "orch.clients" in line)


@pytest.mark.parametrize("kind", sorted(CLIENT_KINDS, key=lambda k: k.name), ids=lambda k: k.name)
def test_the_load_generator_runs_on_the_node_and_only_its_native_tool_in_the_image(kind):
    script = client_script(kind.name)
    line = started(script)
    # on the node, in the job's environment (orch's helper gives it the recipe's variables)
    assert line.startswith('setsid bash -c "$ORCH_IN_ENV" orch-env "$ORCH_PYTHON" -m orch.clients.%s ' % kind.name)
    assert "ORCH_PYTHON='%s'\n" % PYTHON in script
    if kind.docker_source:
        # its native tool runs in the image: the runtime's words follow "--"
        assert line.endswith('--output "$ORCH_RESULT" -- apptainer exec --bind "$ORCH_RUN_DIR" "$ORCH_IMAGE" &')
        assert "# --- container image" in script
    else:
        # Python alone: no image to fetch, nothing run in one
        assert line.endswith('--output "$ORCH_RESULT" &') and "# --- container image" not in script
        assert "apptainer" not in script.split("# --- orch: run directory")[1]
    assert shellcheck(script) == ""


@pytest.mark.parametrize("kind", sorted(k.name for k in CLIENT_KINDS))
def test_on_the_host_runtime_the_native_tool_comes_from_path(kind):
    line = started(client_script(kind, runtime="host", site="local"))
    assert line.endswith('--output "$ORCH_RESULT" &') and " -- " not in line


def test_without_a_recorded_interpreter_the_nodes_python3_runs_it():
    assert "ORCH_PYTHON='python3'\n" in client_script("redis_benchmark", python=None)


def test_a_recipes_own_command_still_runs_in_the_image():
    script = client_script("chroma_benchmark", extra='  command: "my-bench"\n  container:\n    docker_source: "docker://me/bench:1"\n')
    assert '\nsetsid bash -c "$ORCH_IN_ENV" orch-env apptainer exec --bind "$ORCH_RUN_DIR" "$ORCH_IMAGE" my-bench &' in script
    assert "docker://me/bench:1" in script


def test_a_node_whose_python_cannot_import_orch_fails_at_once_saying_which_and_where(tmp_path):
    # the interpreter recorded at submit time is not there on the node (another venv, no orch): the job
    # must say so in its first seconds, not after waiting for its target and exiting with status 1
    fake = tmp_path / "python3"
    fake.write_text("#!/bin/sh\necho 'Traceback (most recent call last):' >&2\n"
                    "echo \"ModuleNotFoundError: No module named 'orch'\" >&2\nexit 1\n")
    fake.chmod(0o755)
    text = (ROOT / "recipes/clients/redis_benchmark.yaml").read_text()
    job = parse_job(text, site="local", runtime="host", python=str(fake), run_dir=str(tmp_path / "run"),
                    endpoints_dir=str(tmp_path / "endpoints"))
    script = tmp_path / "job.sh"
    script.write_text(render_job(job))
    began = time.monotonic()
    done = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert time.monotonic() - began < 60, "it waited for its target instead of failing first"
    assert done.returncode == 1
    reason = (tmp_path / "run" / "state" / "finished").read_text()
    assert "cannot import orch.clients.redis_benchmark" in reason and str(fake) in reason
    assert "No module named 'orch'" in reason


FAKE_DRIVER = """#!/bin/bash
# a stand-in for orch's load generator: the import check passes; a run writes its --output
if [ "$1" = -c ]; then exit 0; fi
while [ $# -gt 0 ]; do
    if [ "$1" = --output ]; then printf '{"task": "%s"}\\n' "${SLURM_ARRAY_TASK_ID:-0}" > "$2"; fi
    shift
done
"""


def test_each_sweep_tasks_results_are_copied_where_the_output_fields_say(tmp_path):
    import json
    import os
    import socket

    driver = tmp_path / "python3"
    driver.write_text(FAKE_DRIVER)
    driver.chmod(0o755)
    with socket.socket() as target:  # the target only has to accept a TCP connection
        target.bind(("127.0.0.1", 0))
        target.listen(8)
        text = ("client:\n  name: redis_benchmark\n  target_endpoint: http://127.0.0.1:%d\n  sweep:\n    clients: [1, 2]\n"
                "  output:\n    file: %s/out/r.json\n    shared_dir: %s/shared\n" % (target.getsockname()[1], tmp_path, tmp_path))
        job = parse_job(text, site="local", runtime="host", python=str(driver), run_dir=str(tmp_path / "run"),
                        endpoints_dir=str(tmp_path / "endpoints"))
        script = render_job(job)
        for task in ("0", "1"):
            env = dict(os.environ, SLURM_ARRAY_TASK_ID=task)
            done = subprocess.run(["bash", "-s"], input=script, capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env)
            assert done.returncode == 0, done.stderr
            assert "results copied to %s/out/r-%s.json" % (tmp_path, task) in done.stderr
    for task in ("0", "1"):
        assert json.loads((tmp_path / "out" / ("r-%s.json" % task)).read_text()) == {"task": task}
    # the shared directory gets each task's document under its own name (the task's results file)
    shared = sorted(json.loads(path.read_text())["task"] for path in (tmp_path / "shared").glob("*.json"))
    assert shared == ["0", "1"]
