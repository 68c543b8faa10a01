"""Results documents in tables, and clients aimed at a service run or a URL (fake scheduler)."""
import json

import pytest

from conftest import ROOT
from orch.errors import RecipeError
from orch.clients.node import this_job, write_document
from orch.results import csv_text, flatten, new_document, now_iso, read_document, summary, table_text
from orch.effects.process import Completed


def document(task, clients, rps, p99):
    job = {"id": "r1", "job_name": "redis_benchmark_r1", "node": "n1", "slurm_job_id": "70", "array_task": None}
    doc = new_document("redis_benchmark", {"clients": clients, "pipeline": 1}, {"kind": "redis", "host": "h", "port": 1},
                       job=job, started_at=1700000000.0)
    doc["environment"]["array_task"] = str(task)
    doc["run"]["partial"] = False
    doc["throughput"] = {"requests_per_s": rps}
    doc["latency"] = {"request_ms": summary([1.0, 2.0, p99])}
    doc["counts"].update(completed=1000, failed=0)
    doc["domain"] = {"tests": {"SET": {"requests_per_s": rps, "p50_latency_ms": 0.3}}, "recall_at_k": 0.98}
    return doc


def test_summary_comes_from_raw_samples():
    stats = summary(range(1, 101))
    assert (stats["n"], stats["min"], stats["max"], stats["p50"]) == (100, 1.0, 100.0, 50.5)
    assert abs(stats["p99"] - 99.01) < 1e-9 and summary([]) is None


def test_a_document_says_which_job_made_it_and_when():
    doc = document(0, 1, 10.0, 3.0)
    assert doc["run"]["id"] == "r1" and doc["run"]["started_at"] == now_iso(1700000000) == "2023-11-14T22:13:20Z"
    assert (doc["environment"]["node"], doc["environment"]["slurm_job_id"]) == ("n1", "70")


def test_the_job_is_read_from_the_environment_slurm_gives_it():
    job = this_job({"ORCH_JOB": "redis_benchmark_a1b2c3d4", "SLURM_JOB_ID": "42", "SLURM_ARRAY_TASK_ID": "3"}, host="mel0001")
    assert job == {"id": "a1b2c3d4", "job_name": "redis_benchmark_a1b2c3d4", "node": "mel0001", "slurm_job_id": "42",
                   "array_task": "3"}
    assert this_job({}, host="h")["id"] is None


def test_documents_are_written_whole(tmp_path):
    path = tmp_path / "results" / "r.json"
    write_document(path, document(0, 1, 10.0, 3.0))
    assert read_document(path)["schema"] == "orch.result/1"
    assert [p.name for p in path.parent.iterdir()] == ["r.json"]


def test_flatten_puts_parameters_throughput_latency_and_domain_in_columns():
    row = flatten(document(3, 50, 74000.0, 4.0))
    assert row["task"] == "3" and row["clients"] == 50 and row["requests_per_s"] == 74000.0
    assert row["request_ms.p99"] == summary([1.0, 2.0, 4.0])["p99"]
    assert row["SET.requests_per_s"] == 74000.0 and row["recall_at_k"] == 0.98 and row["partial"] is False


def test_table_and_csv_show_one_row_per_task():
    rows = [flatten(document(i, c, 1000.0 * c, 1.0 + i)) for i, c in enumerate((1, 10, 50))]
    table = table_text(rows).splitlines()
    assert table[0].split()[:4] == ["id", "client", "task", "clients"] and len(table) == 4
    lines = csv_text(rows).splitlines()
    assert lines[0].startswith("id,client,task,clients,pipeline,requests_per_s") and len(lines) == 4


def fake_sbatch():
    calls = []

    def runner(argv, input=None, remote=None, timeout=60):
        calls.append(tuple(argv))
        return Completed(argv=tuple(argv), exit_code=0, stdout="77\n", stderr="")

    runner.calls = calls
    return runner


def test_client_aimed_at_a_service_run_waits_for_that_service(tmp_path, monkeypatch):
    from orch.runs import submit_recipe

    monkeypatch.setenv("ORCH_HOME", str(tmp_path / "home"))
    service = {"id": "s1", "role": "service", "kind": "redis", "job_name": "redis_s1", "job_id": "41",
               "endpoints_dir": "/shared/endpoints", "remote": None}
    runner = fake_sbatch()
    record = submit_recipe(ROOT / "recipes/clients/redis_benchmark.yaml", site="local", runtime="host", target=service, runner=runner)
    assert runner.calls[-1] == ("sbatch", "--parsable", "--dependency=after:41")
    script = (tmp_path / "home" / "runs" / record["id"] / "script.sbatch").read_text()
    assert 'ORCH_TARGET_FILE="$ORCH_ENDPOINTS_DIR"/redis_s1.json' in script and "ORCH_ENDPOINTS_DIR='/shared/endpoints'" in script


def test_client_aimed_at_a_url_needs_no_service(tmp_path, monkeypatch):
    from orch.runs import submit_recipe

    monkeypatch.setenv("ORCH_HOME", str(tmp_path / "home"))
    record = submit_recipe(ROOT / "recipes/clients/ollama_benchmark.yaml", site="local", runtime="host",
                           target_endpoint="http://mel2073:11434", runner=fake_sbatch())
    script = (tmp_path / "home" / "runs" / record["id"] / "script.sbatch").read_text()
    assert "TARGET_HOST='mel2073'" in script and "TARGET_PORT='11434'" in script and "ORCH_TARGET_FILE" not in script


@pytest.mark.parametrize("target", [
    {"id": "c1", "role": "client", "kind": "redis_benchmark"},
    {"id": "s2", "role": "service", "kind": "chroma", "remote": None, "job_name": "chroma_s2", "job_id": "3", "endpoints_dir": "/e"},
])
def test_a_target_that_does_not_fit_is_refused_before_anything_is_made(target, tmp_path, monkeypatch):
    from orch.runs import submit_recipe

    monkeypatch.setenv("ORCH_HOME", str(tmp_path / "home"))
    runner = fake_sbatch()
    with pytest.raises(RecipeError):
        submit_recipe(ROOT / "recipes/clients/redis_benchmark.yaml", site="local", runtime="host", target=target, runner=runner)
    assert runner.calls == [] and not (tmp_path / "home" / "runs").exists()


def test_results_and_report_commands_read_the_registry(tmp_path):
    import os
    import subprocess
    import sys

    home = tmp_path / "home"
    run_dir = home / "runs" / "r1"
    for task, clients in enumerate((1, 10)):
        write_document(run_dir / "results" / ("redis_benchmark_r1-%d-7%d.json" % (task, task)), document(task, clients, 1000.0 * clients, 2.0))
    from orch.runrecord import as_json, moved, new_run

    record = new_run(1.0, id="r1", name="redis_benchmark", kind="redis_benchmark", role="client", job_name="redis_benchmark_r1",
                     recipe="<test>", site="local", runtime="host", run_dir=str(run_dir), endpoints_dir=str(home / "endpoints"))
    (run_dir / "run.json").write_text(as_json(moved(record.set(job_id="70"), "completed", "", 2.0)))
    (run_dir / "recipe.yaml").write_text("client:\n  name: redis_benchmark\n")
    env = dict(os.environ, ORCH_HOME=str(home), PYTHONPATH=str(ROOT))

    def orch(*args):
        return subprocess.run([sys.executable, "-m", "orch", *args], capture_output=True, text=True, env=env, timeout=120)

    table = orch("results", "r1")
    assert table.returncode == 0 and len(table.stdout.splitlines()) == 3
    report = orch("report", "r1", "--out", str(tmp_path / "report"))
    assert report.returncode == 0, report.stderr
    assert report.stdout.split() == [str(tmp_path / "report" / "report.md"), str(tmp_path / "report" / "report.html")]
    assert orch("report", "nosuch").returncode == 2
