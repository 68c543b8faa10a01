"""Clients under the real SLURM: aimed at a service run, and a sweep as one job array."""
import json

import pytest

from slurm_cluster import slurm_cluster  # noqa: F401  (fixture)
from test_slurm import env, free_port, orch, recipe, service_yaml, status, submit  # noqa: F401  (fixture, helpers)

pytestmark = pytest.mark.slurm


def client_yaml(extra):
    return (
        "client:\n  name: redis_benchmark\n  duration: 60\n  resources:\n    time: \"00:05:00\"\n    mem: 1G\n"
        "  parameters:\n    requests: 3000\n    data_size: 64\n    tests: set,get\n    wait_for_service: 60\n%s" % extra
    )


def test_client_loads_the_service_it_is_aimed_at_and_reports(env, tmp_path):  # noqa: F811
    _, service = submit(env, recipe(tmp_path, service_yaml("redis", free_port()), "redis.yaml"))
    client_job, client = submit(env, recipe(tmp_path, client_yaml("    clients: 4\n"), "client.yaml"), "--target", service)
    done = orch(env, "wait", client, "--state", "done", "--timeout", "150")
    assert done.returncode == 0, done.stderr + orch(env, "logs", client).stdout
    documents = json.loads(orch(env, "results", client, "--format", "json").stdout)
    assert len(documents) == 1
    document = documents[0]
    assert document["schema"] == "orch.result/1" and document["run"]["partial"] is False
    assert document["environment"]["slurm_job_id"] == client_job
    assert document["throughput"]["requests_per_s"] > 1000
    table = orch(env, "results", client).stdout.splitlines()
    assert len(table) == 2 and "requests_per_s" in table[0]
    assert status(env, service)["state"] == "running"


def test_sweep_runs_as_one_job_array_and_results_gathers_every_point(env, tmp_path):  # noqa: F811
    _, service = submit(env, recipe(tmp_path, service_yaml("redis", free_port()), "redis.yaml"))
    sweep = "  sweep_parallelism: 1\n  sweep:\n    clients: [1, 2, 4]\n    pipeline: [1, 8]\n"
    client_job, client = submit(env, recipe(tmp_path, client_yaml(sweep), "sweep.yaml"), "--target", service)
    done = orch(env, "wait", client, "--state", "done", "--timeout", "300", timeout=360)
    assert done.returncode == 0, done.stderr + orch(env, "logs", client).stdout
    documents = json.loads(orch(env, "results", client, "--format", "json").stdout)
    assert sorted(d["environment"]["array_task"] for d in documents) == [str(i) for i in range(6)]
    assert {(d["parameters"]["clients"], d["parameters"]["pipeline"]) for d in documents} == {
        (c, p) for c in (1, 2, 4) for p in (1, 8)}
    assert all(d["run"]["partial"] is False for d in documents)
    assert {d["environment"]["slurm_job_id"] for d in documents}.__len__() == 6
    csv_lines = orch(env, "results", client, "--format", "csv").stdout.splitlines()
    assert len(csv_lines) == 7
