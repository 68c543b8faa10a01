"""Placement: an experiment's member kept apart from, or together with, a service's node(s).

Checked as the experiment file is read (line and field); submitted held, with a
placement job that SLURM starts once the services run; that job's script run
against stand-in squeue/scontrol/scancel; and, under the real single-node SLURM,
together_with to the end, apart_from left pending (one node: there is no other),
a service that fails first, and orch stop leaving nothing held or running.
A cluster of several nodes, where apart_from can run, is not tested here.
"""
import json
import os
import subprocess
import time

import pytest
from pyrsistent import thaw

from orch.errors import RecipeError
from orch.experiments import parse_experiment
from orch.lifecycle import SlurmJob
from orch.runrecord import new_run, observed
from slurm_cluster import slurm_cluster  # noqa: F401  (fixture)
from test_experiments import INLINE, scheduler
from test_slurm import env, free_port, orch, status  # noqa: F401  (fixture, helpers)

def experiment_text(placement="apart_from: cache", port=16399, service_extra="", client_resources=""):
    """test_experiments' inline experiment (a redis, and a client sweeping two points: a job array) with a placement."""
    text = INLINE % {"port": port, "service_extra": service_extra} + "      placement: {%s}\n" % placement
    return text.replace("          mem: 1G\n        parameters", "          mem: 1G\n%s        parameters" % client_resources)


def test_a_member_reads_its_placement():
    client = parse_experiment(experiment_text(), "e.yaml").clients[0]
    assert (client.placement.rule, client.placement.anchors) == ("apart_from", ("cache",))
    client = parse_experiment(experiment_text("together_with: cache"), "e.yaml").clients[0]
    assert (client.placement.rule, client.placement.anchors) == ("together_with", ("cache",))
    # apart from several services: a list; the monitoring's Prometheus is a service too
    text = experiment_text("apart_from: [cache, prometheus]").replace("  services:", "  monitoring: {exporter: none}\n  services:")
    assert parse_experiment(text, "e.yaml").clients[0].placement.anchors == ("cache", "prometheus")
    # no placement: wherever SLURM puts it, as before
    assert parse_experiment(experiment_text().replace("      placement: {apart_from: cache}\n", ""), "e.yaml").clients[0].placement is None


SECOND_SERVICE = """    - service: {name: redis, ports: [16400]}
      as: other
      placement: {%s}
"""


@pytest.mark.parametrize("placement,extra,line,field,words", [
    ("apart_from: nosuch", "", 26, "clients[0].placement.apart_from", "no service 'nosuch' in this experiment (it has: cache)"),
    ("together_with: redis_benchmark", "", 26, "clients[0].placement.together_with",
     "'redis_benchmark' is a client: a member is placed by a service's nodes"),
    ("apart_from: [cache, cache]", "", 26, "clients[0].placement.apart_from", "a service is named twice"),
    ("apart_from: cache, together_with: cache", "", 26, "clients[0].placement.apart_from",
     "give exactly one of apart_from and together_with"),
    ("", "", 26, "clients[0].placement.apart_from", "give exactly one of apart_from and together_with"),
    ("apart_from: \"ca che\"", "", 26, "clients[0].placement.apart_from", "is not the name of one of the experiment's services"),
    ("apart_from: cache", "together_with: other", 14, "services[1].placement.together_with", "other cannot be placed together with itself"),
], ids=["unknown", "a-client", "twice", "both", "neither", "not-a-name", "itself"])
def test_placement_problems_name_the_line_and_field(placement, extra, line, field, words):
    text = experiment_text(placement)
    if extra:
        text = text.replace("\n  clients:\n", "\n" + SECOND_SERVICE % extra + "  clients:\n")
    with pytest.raises(RecipeError) as caught:
        parse_experiment(text, "e.yaml")
    assert [(p.line, p.field) for p in caught.value.problems] == [(line, "experiment." + field)], caught.value.problems
    assert words in caught.value.problems[0].message


def test_a_member_pinned_by_nodelist_cannot_be_placed_too():
    with pytest.raises(RecipeError) as caught:
        parse_experiment(experiment_text(client_resources="          nodelist: vm\n"), "e.yaml")
    assert [str(p) for p in caught.value.problems] == [
        "e.yaml:27: experiment.clients[0].placement.apart_from: redis_benchmark has resources.nodelist: its nodes are chosen "
        "already, leave one of them out"]


def test_services_placed_by_each_other_are_refused_as_a_cycle():
    text = experiment_text().replace(
        "      as: cache\n", "      as: cache\n      placement: {apart_from: other}\n").replace(
        "\n  clients:\n", "\n" + SECOND_SERVICE % "together_with: cache" + "  clients:\n")
    with pytest.raises(RecipeError) as caught:
        parse_experiment(text, "e.yaml")
    assert [(p.line, p.field, p.message) for p in caught.value.problems] == [
        (3, "experiment.services", "services placed by each other's nodes wait for each other forever: cache -> other -> cache")]


# --- submission, with a fake scheduler


def test_a_placed_member_is_submitted_held_and_its_placement_job_after_its_service(tmp_path, monkeypatch):
    from orch.effects import registry
    from orch.experiment_runs import run_experiment, stop_experiment

    monkeypatch.setenv("ORCH_HOME", str(tmp_path / "home"))
    path = tmp_path / "e.yaml"
    path.write_text(experiment_text(client_resources="          exclude: \"n[1-2]\"\n"))
    runner = scheduler()
    record = run_experiment(path, site="local", runtime="host", runner=runner)
    sbatch = [c for c in runner.calls if c[0] == "sbatch"]
    assert sbatch == [
        ("sbatch", "--parsable"),                                         # the service
        ("sbatch", "--parsable", "--dependency=after:100", "--hold"),     # its client, held
        ("sbatch", "--parsable", "--dependency=after:100"),               # the placement job, once the service runs
        ("sbatch", "--parsable", "--dependency=afterany:101"),            # the conductor, after every client
    ]
    assert list(record["placement_job_ids"]) == ["102"] and record["conductor_job_id"] == "103"
    client = registry.load(next(m["id"] for m in record["members"] if m["role"] == "client"))
    assert thaw(client["placement"]) == {"rule": "apart_from", "with": ["cache"], "job_id": "102"}
    # stopping it cancels the placement job and the conductor as well as the members
    runner.calls.clear()
    stop_experiment(registry.load(record["id"]), runner=ended(runner))
    cancelled = [c[1:] for c in runner.calls if c[0] == "scancel"]
    assert ("102",) in cancelled and ("103",) in cancelled and any("101" in c for c in cancelled)


def ended(runner):
    """The fake scheduler, with squeue saying every job so far was cancelled."""
    from orch.effects.process import Completed

    def answer(argv, input=None, remote=None, timeout=60):
        if argv[0] != "squeue":
            return runner(argv, input=input, remote=remote, timeout=timeout)
        return Completed(argv=tuple(argv), exit_code=0, stdout="".join("%d|CANCELLED||0:00|None\n" % n for n in range(100, 110)))

    return answer


def test_a_refused_placement_job_cancels_and_forgets_what_was_submitted(tmp_path, monkeypatch):
    from orch.effects import registry
    from orch.errors import SubmissionError
    from orch.experiment_runs import run_experiment

    monkeypatch.setenv("ORCH_HOME", str(tmp_path / "home"))
    path = tmp_path / "e.yaml"
    path.write_text(experiment_text())
    runner = scheduler(refuse_at=3)
    with pytest.raises(SubmissionError):
        run_experiment(path, site="local", runtime="host", runner=runner)
    assert runner.calls[-1] == ("scancel", "100", "101") and registry.all_runs() == []


# --- what orch status says of a placed member


def placed_run(**fields):
    run = new_run(1.0, id="c1", name="redis_benchmark", kind="redis_benchmark", role="client", job_name="redis_benchmark_c1",
                  recipe="<r>", site="local", runtime="host", run_dir="/r/c1", endpoints_dir="/r/e", job_id="101",
                  placement={"rule": "apart_from", "with": ["cache"], "job_id": "102"})
    return run.set(**fields)


def test_a_held_member_says_what_it_waits_for():
    run = observed(placed_run(), SlurmJob(job_id="101", state="PENDING", reason="JobHeldUser"), None, None, 2.0)
    assert (run["state"], run["reason"]) == ("pending", "held until cache runs; then its placement job 102 keeps it off cache's node(s)")


def test_a_placed_member_that_cannot_run_says_which_nodes_it_was_kept_off():
    marker = {"released": True, "rule": "apart_from", "with": "cache", "nodes": "vm", "reason": ""}
    run = observed(placed_run(), SlurmJob(job_id="101", state="PENDING", reason="BadConstraints"), None, None, 2.0, marker)
    assert run["reason"] == "no node fits it (SLURM: BadConstraints): placed apart from cache, not on vm"
    # the marker is kept: it is read once
    later = observed(run, SlurmJob(job_id="101", state="PENDING", reason="Resources"), None, None, 3.0)
    assert later["reason"] == "Resources: placed apart from cache, not on vm"
    assert observed(later, SlurmJob(job_id="101", state="RUNNING", node="n2"), None, None, 4.0)["reason"] == ""


def test_a_member_its_placement_job_cancelled_says_why():
    marker = {"released": False, "nodes": "", "reason": "not placed: cache (job 100) ended (FAILED) before redis_benchmark could be "
                                                          "placed apart from it"}
    run = observed(placed_run(), SlurmJob(job_id="101", state="CANCELLED"), None, None, 2.0, marker)
    assert (run["state"], run["reason"]) == ("cancelled", marker["reason"])


# --- the placement job's script, against stand-ins for squeue, scontrol and scancel


def placement_script(tmp_path, rule="apart_from", own_exclude=None, anchors=(("cache", "100"),)):
    from orch.sections.placer import placer_script

    return placer_script("placed", "run1", str(tmp_path / "run"), ("redis_benchmark", "101", str(tmp_path / "member")), rule,
                         anchors, own_exclude=own_exclude)


def run_placement(tmp_path, script, views, refuse_update=""):
    """Run the script with squeue answering ``views`` ({job id: "STATE|NODES|BATCH HOST"}); return (result, SLURM calls)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    log = tmp_path / "calls"
    for name in ("scontrol", "scancel"):
        refuse = 'if [ "$1" = update ] && [ -n "%s" ]; then echo "%s" >&2; exit 1; fi' % (refuse_update, refuse_update) \
            if name == "scontrol" else ""
        (bin_dir / name).write_text('#!/bin/bash\necho "%s $*" >> %s\n%s\nexit 0\n' % (name, log, refuse))
    cases = "".join('    *--jobs=%s*) echo "%s" ;;\n' % (job, view) for job, view in views.items())
    (bin_dir / "squeue").write_text('#!/bin/bash\ncase "$*" in\n%s    *) exit 1 ;;\nesac\n' % cases)
    for name in ("scontrol", "scancel", "squeue"):
        os.chmod(bin_dir / name, 0o755)
    environment = dict(os.environ, PATH="%s:%s" % (bin_dir, os.environ["PATH"]))
    result = subprocess.run(["bash", "-s"], input=script, capture_output=True, text=True, env=environment, timeout=60)
    calls = log.read_text().splitlines() if log.exists() else []
    return result, calls


def marker(tmp_path):
    return json.loads((tmp_path / "member" / "state" / "placement").read_text())


def test_the_placement_job_keeps_the_member_off_every_node_of_its_services_and_its_own_excludes(tmp_path):
    script = placement_script(tmp_path, own_exclude="x[1-2]", anchors=(("cache", "100"), ("prometheus", "99")))
    result, calls = run_placement(tmp_path, script, {"101": "PENDING||n/a", "100": "RUNNING|n[3-4]|n3", "99": "RUNNING|n7|n7"})
    assert result.returncode == 0, result.stderr
    assert calls == ["scontrol update JobId=101 ExcNodeList=x[1-2],n[3-4],n7", "scontrol release 101"]
    assert marker(tmp_path) == {"released": True, "rule": "apart_from", "with": "cache prometheus", "nodes": "n[3-4],n7",
                                "reason": "", "placement_job": ""}


def test_the_placement_job_puts_the_member_on_its_service_s_batch_host(tmp_path):
    result, calls = run_placement(tmp_path, placement_script(tmp_path, rule="together_with"),
                                  {"101": "PENDING||n/a", "100": "RUNNING|n[3-4]|n3"})
    assert result.returncode == 0, result.stderr
    assert calls == ["scontrol update JobId=101 ReqNodeList=n3", "scontrol release 101"]
    assert marker(tmp_path)["nodes"] == "n3"


@pytest.mark.parametrize("view,refusal,words", [
    ("FAILED|n3|n3", "", "not placed: cache (job 100) ended (FAILED) before redis_benchmark could be placed apart from it"),
    ("CANCELLED||n/a", "", "ended (CANCELLED)"),
    ("RUNNING|n3|n3", "scontrol: error: Invalid node name specified", "was refused: scontrol: error: Invalid node name specified"),
], ids=["service-failed", "service-cancelled", "update-refused"])
def test_the_placement_job_cancels_a_member_it_cannot_place(tmp_path, view, refusal, words):
    result, calls = run_placement(tmp_path, placement_script(tmp_path), {"101": "PENDING||n/a", "100": view}, refuse_update=refusal)
    assert result.returncode == 1
    assert calls[-1] == "scancel 101" and "scontrol release 101" not in calls
    found = marker(tmp_path)
    assert found["released"] is False and words in found["reason"], found


def test_the_placement_job_leaves_a_member_that_is_no_longer_pending_alone(tmp_path):
    result, calls = run_placement(tmp_path, placement_script(tmp_path), {"101": "CANCELLED||n/a", "100": "RUNNING|n3|n3"})
    assert result.returncode == 0 and calls == []
    assert not (tmp_path / "member" / "state" / "placement").exists()


# --- under SLURM (one node)


def scontrol_fields(job_id):
    text = subprocess.run(["scontrol", "show", "job", "-o", str(job_id)], capture_output=True, text=True, timeout=30).stdout
    return dict(part.split("=", 1) for part in text.split() if "=" in part)


def run_ids(env, run_id):  # noqa: F811
    """Every SLURM job of an experiment run: members, placement jobs, conductor."""
    record = json.loads((env_home(env) / "runs" / run_id / "run.json").read_text())
    members = [json.loads((env_home(env) / "runs" / m["id"] / "run.json").read_text())["job_id"] for m in record["members"]]
    return [j for j in members + list(record["placement_job_ids"]) + [record["conductor_job_id"]] if j]


def env_home(env):  # noqa: F811
    from pathlib import Path

    return Path(env["ORCH_HOME"])


def live(job_ids):
    out = subprocess.run(["squeue", "--noheader", "--format=%i %T %r", "--jobs=" + ",".join(job_ids)], capture_output=True,
                         text=True, timeout=30).stdout
    return [line for line in out.splitlines() if line.split()[1] in ("PENDING", "RUNNING", "CONFIGURING", "COMPLETING")]


@pytest.mark.slurm
def test_together_with_runs_the_client_on_its_service_s_node(env, tmp_path):  # noqa: F811
    path = tmp_path / "e.yaml"
    path.write_text(experiment_text("together_with: cache", port=free_port()))
    ran = orch(env, "run", str(path), "--site", "local", "--runtime", "host", "--wait", timeout=300)
    assert ran.returncode == 0, ran.stderr
    members = json.loads(orch(env, "status", "--json", ran.stdout.split()[0]).stdout)
    service = next(m for m in members if m["role"] == "service")
    client = next(m for m in members if m["role"] == "client")
    assert client["state"] == "completed" and client["node"] == service["node"], members
    assert scontrol_fields(client["job_id"])["ReqNodeList"] == service["node"]
    documents = json.loads(orch(env, "results", ran.stdout.split()[0], "--format", "json").stdout)
    # both points of the client's sweep (a job array, placed as one job) ran there
    assert sorted(d["parameters"]["clients"] for d in documents) == [1, 4]
    assert {d["environment"]["node"] for d in documents} == {service["node"]}


@pytest.mark.slurm
def test_apart_from_on_one_node_leaves_the_client_pending_off_that_node_and_stop_leaves_nothing(env, tmp_path):  # noqa: F811
    path = tmp_path / "e.yaml"
    path.write_text(experiment_text(port=free_port()))
    ran = orch(env, "run", str(path), "--site", "local", "--runtime", "host")
    assert ran.returncode == 0, ran.stderr
    run_id = ran.stdout.split()[0]
    deadline, client = time.monotonic() + 60, None
    while time.monotonic() < deadline:
        members = json.loads(orch(env, "status", "--json", run_id).stdout)
        client = next(m for m in members if m["role"] == "client")
        if "BadConstraints" in client["reason"]:
            break
        time.sleep(1)
    service = next(m for m in members if m["role"] == "service")
    assert service["state"] == "running" and client["state"] == "pending", members
    assert client["reason"] == "no node fits it (SLURM: BadConstraints): placed apart from cache, not on %s" % service["node"]
    fields = scontrol_fields(client["job_id"])
    assert (fields["JobState"], fields["ExcNodeList"], fields["Reason"]) == ("PENDING", service["node"], "BadConstraints")
    assert "pending: no node fits it" in orch(env, "status", run_id).stdout

    stopped = orch(env, "stop", run_id)
    assert stopped.returncode == 0, stopped.stderr
    assert live(run_ids(env, run_id)) == []


@pytest.mark.slurm
def test_a_service_that_fails_first_gets_its_placed_client_cancelled_not_held(env, tmp_path):  # noqa: F811
    path = tmp_path / "e.yaml"
    path.write_text(experiment_text(port=free_port(), service_extra="\n        command: \"false\""))
    ran = orch(env, "run", str(path), "--site", "local", "--runtime", "host", "--wait", timeout=300)
    assert ran.returncode == 1
    run_id = ran.stdout.split()[0]
    deadline = time.monotonic() + 60
    while live(run_ids(env, run_id)) and time.monotonic() < deadline:
        time.sleep(1)
    assert live(run_ids(env, run_id)) == []
    client = next(m for m in json.loads(orch(env, "status", "--json", run_id).stdout) if m["role"] == "client")
    assert client["state"] == "cancelled", client


@pytest.mark.slurm
def test_a_normal_user_s_placement_job_updates_and_releases_that_user_s_held_job(slurm_cluster):  # noqa: F811
    """What placement relies on, as a user who is not root (orchtest, made here when missing): their own held job's
    ReqNodeList set by their own placement job with scontrol update, and released."""
    import pwd
    import shutil
    import tempfile

    if os.geteuid() != 0:
        pytest.skip("needs root to become an unprivileged user")
    try:
        user = pwd.getpwnam("orchtest")
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin",
                        "orchtest"], check=True, timeout=60)
        user = pwd.getpwnam("orchtest")
    work = tempfile.mkdtemp(prefix="orch-place-", dir="/tmp")
    submitted = []
    try:
        os.makedirs(work + "/logs")  # the placement job's --output directory: orch run makes it
        for path in (work, work + "/logs"):
            os.chown(path, user.pw_uid, user.pw_gid)

        def as_user(*words, stdin=None):
            done = subprocess.run(words, user=user.pw_uid, group=user.pw_gid, extra_groups=[], cwd=work, input=stdin,
                                  capture_output=True, text=True, timeout=60, env={"PATH": os.environ["PATH"], "HOME": work})
            assert done.returncode == 0, done.stderr
            if words[0] == "sbatch":
                submitted.append(done.stdout.strip())
            return done.stdout.strip()

        service = as_user("sbatch", "--parsable", "--output=/dev/null", "--time=2", "--wrap", "sleep 60")
        member = as_user("sbatch", "--parsable", "--hold", "--output=/dev/null", "--time=2", "--wrap", "true")
        from orch.sections.placer import placer_script

        script = placer_script("placed", "u1", work, ("member", member, work + "/member"), "together_with", (("service", service),))
        placer = as_user("sbatch", "--parsable", "--dependency=after:" + service, stdin=script)
        deadline = time.monotonic() + 60
        while scontrol_fields(member).get("JobState") not in ("COMPLETED", "FAILED", "CANCELLED") and time.monotonic() < deadline:
            time.sleep(1)
        fields = scontrol_fields(member)
        node = scontrol_fields(service)["BatchHost"]
        assert (fields["JobState"], fields["ReqNodeList"], fields["UserId"].split("(")[0]) == ("COMPLETED", node, "orchtest"), fields
        with open(work + "/member/state/placement") as marker_file:
            assert json.load(marker_file)["released"] is True
        assert scontrol_fields(placer)["JobState"] == "COMPLETED"
    finally:
        # only this test's jobs: other tests run as orchtest too
        if submitted:
            subprocess.run(["scancel", *submitted], capture_output=True, timeout=30)
        shutil.rmtree(work, ignore_errors=True)
