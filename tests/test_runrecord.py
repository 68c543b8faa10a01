"""The run record: typed, immutable, changed only by pure transitions; stored and read back whole."""
import json

import pytest
from hypothesis import given, strategies as st
from pyrsistent import InvariantException, PTypeError

from orch.errors import NotFound
from orch.lifecycle import TERMINAL, SlurmJob
from orch.runrecord import STATES, Run, as_json, from_json, moved, named, new_run, observed


def a_run(**fields):
    base = dict(id="a1b2c3d4", name="redis", kind="redis", role="service", job_name="redis_a1b2c3d4", recipe="/r/redis.yaml",
                site="local", runtime="host", run_dir="/runs/a1b2c3d4", endpoints_dir="/runs/endpoints")
    base.update(fields)
    return new_run(100.0, **base)


def test_a_new_run_is_created_with_its_first_history_entry():
    run = a_run()
    assert run["state"] == "created" and list(run["history"]) == [("created", 100.0, "")]
    assert run.get("endpoint") is None and run["job_id"] is None


def test_moved_adds_history_only_when_something_changed():
    run = moved(a_run(), "pending", "Priority", 101.0)
    assert moved(run, "pending", "Priority", 102.0) is run
    again = moved(run, "pending", "Resources", 103.0)
    assert [h[0] for h in again["history"]] == ["created", "pending", "pending"] and again["reason"] == "Resources"


def test_a_record_refuses_what_it_cannot_hold():
    with pytest.raises(InvariantException):
        a_run(role="wizard")
    with pytest.raises(InvariantException):
        a_run().set(state="exploded")
    with pytest.raises(PTypeError):
        a_run().set(ready="yes")


SQUEUE_STATES = ("PENDING", "RUNNING", "COMPLETED", "FAILED", "TIMEOUT", "CANCELLED", "NODE_FAIL")
views = st.none() | st.builds(lambda s, n: SlurmJob(job_id="7", state=s, node=n, elapsed="0:01"), st.sampled_from(SQUEUE_STATES),
                              st.sampled_from(("", "vm", "node1")))
finished = st.none() | st.builds(lambda code, reason: {"exit_code": code, "reason": reason}, st.sampled_from((0, 1, 143)),
                                 st.sampled_from(("", "redis exited", "TIMEOUT: time limit reached")))
ready = st.none() | st.just({"host": "vm", "port": 6379})


@given(st.lists(st.tuples(views, finished, ready), max_size=8))
def test_observations_never_leave_an_ended_run_and_history_records_every_change(observations):
    run = a_run().set(job_id="7")
    run = moved(run, "submitted", "", 100.5)
    for at, (view, marker, up) in enumerate(observations):
        before = run
        run = observed(run, view, marker, up, 200.0 + at)
        assert run["state"] in STATES
        if before["state"] in TERMINAL:
            assert run["state"] == before["state"]
        if (run["state"], run["reason"]) != (before["state"], before["reason"]):
            assert tuple(run["history"][-1]) == (run["state"], 200.0 + at, run["reason"])
        else:
            assert len(run["history"]) == len(before["history"])
        if up is not None:
            assert run["ready"] and run["endpoint"]["port"] == 6379


@given(st.sampled_from(STATES), st.text(max_size=20), st.booleans(), st.none() | st.just({"host": "n1", "port": 1}))
def test_the_stored_record_reads_back_the_same(state, reason, ready_flag, endpoint):
    run = a_run().set(state=state, reason=reason, ready=ready_flag, endpoint=endpoint, job_id="12", members=[{"id": "m1"}])
    text = as_json(run)
    assert from_json(text) == run
    assert json.loads(text)["history"] == [["created", 100.0, ""]]


def test_fields_a_newer_orch_wrote_are_left_out_not_refused():
    stored = json.loads(as_json(a_run()))
    stored["something_new"] = 3
    assert from_json(json.dumps(stored)) == a_run()


def test_a_run_is_named_by_id_prefix_job_name_or_job_id():
    runs = [a_run(), a_run(id="a1ffffff", job_name="redis_a1ffffff").set(job_id="77")]
    assert named("a1b2", runs)["id"] == "a1b2c3d4"
    assert named("77", runs)["id"] == "a1ffffff" and named("redis_a1b2c3d4", runs)["id"] == "a1b2c3d4"
    with pytest.raises(NotFound, match="several"):
        named("a1", runs)
    with pytest.raises(NotFound):
        named("zz", runs)


def test_the_registry_skips_a_torn_or_foreign_record_and_says_so(tmp_path, monkeypatch, capsys):
    from orch.effects import registry

    monkeypatch.setenv("ORCH_HOME", str(tmp_path))
    registry.create(a_run())
    for name, text in (("torn", '{"id": "to'), ("foreign", '{"id": "foreign"}')):
        (tmp_path / "runs" / name).mkdir()
        (tmp_path / "runs" / name / "run.json").write_text(text)
    assert [r["id"] for r in registry.all_runs()] == ["a1b2c3d4"]
    assert isinstance(registry.find("a1b2"), Run)
    said = capsys.readouterr().err.splitlines()
    assert len(said) == 2 and all("not a run record orch can read" in line and "skipped" in line for line in said)
    assert any("/runs/torn/run.json" in line for line in said) and any("/runs/foreign/run.json" in line for line in said)


# a record as orch 0.1.0 before the typed record (d39b522) wrote it: a single job and an experiment
OLD_JOB = {
    "id": "5f0c2a9e", "name": "redis", "kind": "redis", "role": "service", "job_name": "redis_5f0c2a9e",
    "recipe": "/home/u/recipes/services/redis.yaml", "site": "local", "runtime": "host", "remote": None,
    "run_dir": "/home/u/.orch/runs/5f0c2a9e", "endpoints_dir": "/home/u/.orch/endpoints", "job_id": "4242",
    "state": "running", "reason": "", "ready": True, "node": "vm", "elapsed": "0:31",
    "endpoint": {"name": "redis", "kind": "redis", "orch_id": "5f0c2a9e", "job_id": "4242", "host": "vm", "port": 6379,
                 "metrics_port": None, "run_dir": "/home/u/.orch/runs/5f0c2a9e"},
    "created_at": 1764650000.123,
    "history": [["created", 1764650000.123, ""], ["submitted", 1764650000.2, ""], ["running", 1764650003.0, ""]],
}
OLD_EXPERIMENT = {
    "id": "e1a2b3c4", "name": "study", "kind": "experiment", "role": "experiment", "job_name": "study_e1a2b3c4",
    "recipe": "/home/u/e.yaml", "site": "local", "runtime": "host", "remote": None, "run_dir": "/home/u/.orch/runs/e1a2b3c4",
    "endpoints_dir": "/home/u/.orch/runs/e1a2b3c4/endpoints", "job_id": None, "state": "submitted", "reason": "",
    "ready": False, "node": "", "elapsed": "", "endpoint": None, "keep_services": False, "conductor_job_id": 4250,
    "members": [{"id": "5f0c2a9e", "role": "service", "alias": "cache", "monitoring": False}],
    "created_at": 1764650000, "history": [["created", 1764650000, ""], ["submitted", 1764650001, ""]],
}


@pytest.mark.parametrize("stored", [OLD_JOB, OLD_EXPERIMENT], ids=["job", "experiment"])
def test_records_the_previous_orch_wrote_still_load(stored):
    run = from_json(json.dumps(stored))
    assert run["id"] == stored["id"] and run["state"] == stored["state"] and len(run["history"]) == len(stored["history"])
    assert json.loads(as_json(run))["history"] == stored["history"]
    if stored["role"] == "experiment":
        assert run["conductor_job_id"] == "4250" and run["members"][0]["alias"] == "cache"
    else:
        assert run["endpoint"]["port"] == 6379 and run["job_id"] == "4242" and run["alias"] is None
