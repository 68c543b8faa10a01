"""Experiments: one file, every member checked; under SLURM, run to the end with nothing left behind."""
import json
import time

import pytest

from conftest import ROOT
from orch.errors import RecipeError
from orch import render_job
from orch.experiments import parse_experiment
from orch.lifecycle import experiment_state
from orch.recipe import parse_job
from slurm_cluster import slurm_cluster  # noqa: F401  (fixture)
from test_slurm import assert_nothing_left, env, free_port, orch, status  # noqa: F401  (fixture, helpers)

INLINE = """experiment:
  name: study
  services:
    - service:
        name: redis
        ports: [%(port)d]
        resources:
          time: "00:05:00"
          mem: 1G
        health_check: {timeout: 30, retries: 30, interval: 1}%(service_extra)s
      as: cache
  clients:
    - client:
        name: redis_benchmark
        duration: 60
        resources:
          time: "00:05:00"
          mem: 1G
        parameters:
          requests: 2000
          tests: set,get
          wait_for_service: 60
        sweep:
          clients: [1, 4]
      target: cache
"""


def test_the_shipped_experiment_loads_with_its_members():
    experiment = parse_experiment((ROOT / "recipes/experiments/redis-study.yaml").read_text(),
                                  str(ROOT / "recipes/experiments/redis-study.yaml"))
    assert [(m.role, m.alias, m.monitoring) for m in experiment.services + experiment.clients] == [
        ("service", "prometheus", True), ("service", "grafana", True), ("service", "redis", False), ("client", "redis_benchmark", False)]
    assert experiment.clients[0].target == "redis" and experiment.keep_services is False
    assert experiment.exporters == ("node_exporter",) and experiment.scrape_interval == "5s"
    # Grafana shows that very Prometheus, with orch's dashboards
    grafana = render_job(parse_job(experiment.services[1].text, "<grafana>"))
    assert "prometheus.json" in grafana and "orch: service resources" in grafana


def test_inline_members_load_as_recipes():
    experiment = parse_experiment(INLINE % {"port": 6390, "service_extra": ""}, "e.yaml")
    assert experiment.services[0].alias == "cache" and experiment.clients[0].target == "cache"
    assert experiment.services[0].text.startswith("service:\n  name: redis\n")


@pytest.mark.parametrize("change,line,field,words", [
    (("target: cache", "target: nosuch"), 25, "experiment.clients[0].target", "no service 'nosuch' in this experiment"),
    (("ports: [%(port)d]", "ports: [0]"), 6, "experiment.services[0].ports[0]", "out of range"),
    (("mem: 1G\n        health", "mem: 4.5G\n        health"), 9, "experiment.services[0].resources.mem", "SLURM memory size"),
    (("  name: study\n", "  name: study\n  colour: red\n"), 3, "experiment.colour", "unknown field"),
], ids=["missing-service", "inline-port", "inline-mem", "unknown-field"])
def test_problems_name_the_experiment_file_line_and_field(change, line, field, words):
    text = (INLINE.replace(*change)) % {"port": 6390, "service_extra": ""}
    with pytest.raises(RecipeError) as caught:
        parse_experiment(text, "e.yaml")
    assert any(p.file == "e.yaml" and p.line == line and p.field == field and words in p.message for p in caught.value.problems), \
        caught.value.problems


def test_a_member_file_problem_names_that_file(tmp_path):
    (tmp_path / "bad.yaml").write_text("service:\n  name: redis\n  ports: [99999]\n")
    (tmp_path / "e.yaml").write_text("experiment:\n  name: e\n  services:\n    - recipe: bad.yaml\n")
    with pytest.raises(RecipeError) as caught:
        parse_experiment((tmp_path / "e.yaml").read_text(), str(tmp_path / "e.yaml"))
    assert [(p.file, p.line) for p in caught.value.problems] == [(str(tmp_path / "bad.yaml"), 3)]


def test_experiment_state_follows_its_members():
    service = {"role": "service", "name": "redis", "state": "running"}
    client = {"role": "client", "name": "c", "state": "running"}
    assert experiment_state([service, client]) == ("running", "")
    assert experiment_state([dict(service, state="cancelled"), dict(client, state="completed")]) == ("completed", "")
    assert experiment_state([dict(service, state="failed", reason="not ready"), client])[0] == "failed"


# --- under SLURM


def test_experiment_runs_to_the_end_and_stops_its_services(env, tmp_path):  # noqa: F811
    path = tmp_path / "e.yaml"
    path.write_text(INLINE % {"port": free_port(), "service_extra": ""})
    ran = orch(env, "run", str(path), "--site", "local", "--runtime", "host", "--wait", timeout=300)
    assert ran.returncode == 0, ran.stderr
    run_id = ran.stdout.split()[0]
    # live progress: each job's changes of state, then the run's end
    progress = [line.split(None, 2)[1:] for line in ran.stderr.splitlines()[1:]]
    assert ["cache", "running (ready)"] in progress and ["redis_benchmark", "completed"] in progress, ran.stderr
    assert ["run", "completed"] in progress, ran.stderr
    table = orch(env, "status", run_id).stdout
    assert "experiment" in table and "completed" in table
    documents = json.loads(orch(env, "results", run_id, "--format", "json").stdout)
    assert sorted(d["parameters"]["clients"] for d in documents) == [1, 4]
    members = json.loads(orch(env, "status", "--json", run_id).stdout)
    service = next(m for m in members if m["role"] == "service")
    deadline = time.monotonic() + 60
    while status(env, service["id"])["state"] == "running" and time.monotonic() < deadline:
        time.sleep(1)
    assert status(env, service["id"])["state"] == "cancelled"  # stopped by the conductor, not by hand
    assert_nothing_left(service["run_dir"])


def test_a_failing_service_fails_the_experiment_and_its_clients_fast(env, tmp_path):  # noqa: F811
    path = tmp_path / "e.yaml"
    path.write_text(INLINE % {"port": free_port(), "service_extra": "\n        command: \"false\""})
    started = time.monotonic()
    ran = orch(env, "run", str(path), "--site", "local", "--runtime", "host", "--wait", timeout=300)
    assert ran.returncode == 1
    assert time.monotonic() - started < 45, "the client waited instead of failing fast"
    run_id = ran.stdout.split()[0]
    record = json.loads(orch(env, "status", "--json", run_id).stdout)[0]
    assert record["state"] == "failed" and "service cache failed" in record["reason"], record


# --- submission order and clean-up, with a fake scheduler (no SLURM)


def scheduler(refuse_at=None):
    """A runner that plays sbatch (job ids 100, 101, ...; the call numbered ``refuse_at`` is refused) and scancel."""
    from orch.effects.process import Completed

    calls = []

    def runner(argv, input=None, remote=None, timeout=60):
        calls.append(tuple(argv))
        if argv[0] == "sbatch":
            number = sum(1 for c in calls if c[0] == "sbatch")
            if number == refuse_at:
                return Completed(argv=tuple(argv), exit_code=1, stderr="sbatch: error: Batch job submission failed: QOS limit\n")
            return Completed(argv=tuple(argv), exit_code=0, stdout="%d\n" % (99 + number))
        return Completed(argv=tuple(argv), exit_code=0)

    runner.calls = calls
    return runner


STUDY = """experiment:
  name: study
  services:
    - service: {name: redis, ports: [16399]}
      as: cache
  clients:
    - client: {name: redis_benchmark, parameters: {clients: [1, 10]}}
      target: cache
"""


def test_services_go_first_clients_after_them_and_the_conductor_after_the_clients(tmp_path, monkeypatch):
    from orch.effects import registry
    from orch.experiment_runs import run_experiment

    monkeypatch.setenv("ORCH_HOME", str(tmp_path / "home"))
    path = tmp_path / "e.yaml"
    path.write_text(STUDY)
    runner = scheduler()
    record = run_experiment(path, site="local", runtime="host", runner=runner)
    assert [c for c in runner.calls if c[0] == "sbatch"] == [
        ("sbatch", "--parsable"),                              # the service
        ("sbatch", "--parsable", "--dependency=after:100"),    # its client, after it
        ("sbatch", "--parsable", "--dependency=afterany:101"),  # the conductor, after every client
    ]
    assert record["state"] == "submitted" and record["conductor_job_id"] == "102"
    members = {m["alias"]: registry.load(m["id"]) for m in record["members"]}
    assert members["cache"]["job_id"] == "100" and members["redis_benchmark"]["job_id"] == "101"
    assert members["redis_benchmark"]["endpoints_dir"] == record["endpoints_dir"] == members["cache"]["endpoints_dir"]


@pytest.mark.parametrize("refuse_at", [2, 3])
def test_a_refusal_part_way_cancels_and_forgets_what_was_submitted(tmp_path, monkeypatch, refuse_at):
    from orch.effects import registry
    from orch.errors import SubmissionError
    from orch.experiment_runs import run_experiment

    monkeypatch.setenv("ORCH_HOME", str(tmp_path / "home"))
    path = tmp_path / "e.yaml"
    path.write_text(STUDY)
    runner = scheduler(refuse_at=refuse_at)
    with pytest.raises(SubmissionError, match="QOS limit"):
        run_experiment(path, site="local", runtime="host", runner=runner)
    submitted = ["%d" % (99 + n) for n in range(1, refuse_at)]
    assert runner.calls[-1] == ("scancel",) + tuple(submitted)
    assert registry.all_runs() == []
