"""Experiments as runs: submitting one (its members, then its conductor), following it, stopping it.

An experiment's record holds its members' ids; its state is derived from
theirs (``lifecycle.experiment_state``). ``refresh_experiments`` and
``wait_for`` take any records, single jobs and experiments alike.
"""
import os
import time

from orch.effects import files, registry, scheduler
from orch.effects.process import run
from orch.errors import WaitFailed
from orch.lifecycle import TERMINAL
from orch.runrecord import moved, new_run
from orch.recipe import read_recipe
from orch.runs import cancel_runs, new_id, reached, refresh, remote_of, remote_text, result_documents, submit_job

__all__ = ("run_experiment", "members_of", "stop_experiment", "refresh_experiments", "wait_for", "documents_of")


def run_experiment(path, *, site="meluxina", runtime=None, remote=None, kinds=None, runner=run, python=None):
    """Submit an experiment: its monitoring, its services, each client aimed at its service, then the conductor.

    Every member is checked before anything is submitted; if a submission is
    refused part-way, what was already submitted is cancelled and forgotten.
    """
    from orch.experiment_jobs import conductor_of, member_jobs, placers_of
    from orch.experiments import parse_experiment

    text = read_recipe(path, "experiment")
    experiment = parse_experiment(text, str(path), site=site, runtime=runtime, kinds=kinds)
    run_id = new_id()
    started = int(registry.now())
    runs_root = registry.runs_dir() if remote is None else "%s/orch-runs" % scheduler.remote_home(remote, runner=runner)
    run_dir = "%s/%s" % (runs_root, run_id)
    ids = {}
    jobs = member_jobs(experiment, run_id, runs_root, site=site, runtime=runtime,
                       member_id=lambda index: ids.setdefault(index, new_id()), kinds=kinds, python=python)
    record = new_run(
        registry.now(), id=run_id, name=experiment.name, kind="experiment", role="experiment",
        job_name="%s_%s" % (experiment.name, run_id), recipe=os.path.abspath(str(path)), site=site, runtime=jobs[0][1].runtime if jobs else runtime,
        remote=remote_text(remote), run_dir=run_dir, endpoints_dir=run_dir + "/endpoints", keep_services=experiment.keep_services,
    )
    registry.create(record, files=(("experiment.yaml", text),))
    submitted, placers = [], []
    try:
        files.make_dirs(run_dir + "/logs", remote=remote, runner=runner)
        services = {}
        # member_jobs orders them: the monitoring first (it is up to watch the services start), then
        # the services, then each client aimed at its service and started after it
        for member, job in jobs:
            extra = {"experiment": run_id, "alias": member.alias, "monitoring": member.monitoring,
                     "placement": _placement_field(member.placement)}
            options = () if member.role == "service" else ("--dependency=after:%s" % services[member.target]["job_id"],)
            # a placed member waits, held, until its placement job has put it on or off its services' nodes
            options += ("--hold",) if member.placement else ()
            member_record = submit_job(job, member.text, member.source, site=site, runtime=runtime, remote=remote,
                                       sbatch_options=options, extra=extra, kinds=kinds, runner=runner)
            submitted.append(member_record)
            if member.role == "service":
                services[member.alias] = member_record
        job_ids = [m["job_id"] for m in submitted]
        for (member, anchor_ids, script), member_record in _placed(placers_of(experiment, run_id, run_dir, jobs, job_ids),
                                                                    jobs, submitted):
            options = ("--dependency=after:" + ":".join(anchor_ids),) + _helper_options(jobs[0][1].site)
            placer = scheduler.submit(script, options=options, remote=remote, runner=runner)
            placers.append(placer)
            registry.update(member_record["id"], lambda r, p=placer: r.set(placement=r["placement"].set("job_id", p)))
        conductor = None
        script = conductor_of(experiment, run_id, run_dir, jobs, job_ids, started)
        if script is not None:
            options = ("--dependency=afterany:" + ":".join(m["job_id"] for m in submitted if m["role"] == "client"),)
            conductor = scheduler.submit(script, options=options + _helper_options(jobs[0][1].site), remote=remote, runner=runner)
    except BaseException:
        live = [m["job_id"] for m in submitted] + placers
        if live:
            try:
                scheduler.cancel(live, remote=remote, runner=runner)
            except Exception:  # the submission error is the one to report
                pass
        for member_record in submitted:
            registry.remove(member_record["id"])
        registry.remove(run_id)
        raise
    members = [{"id": m["id"], "role": m["role"], "alias": m["alias"], "monitoring": m["monitoring"]} for m in submitted]
    return registry.update(run_id, lambda r: moved(r.set(members=members, conductor_job_id=conductor, placement_job_ids=placers),
                                                    "submitted", "", registry.now()))


def _placement_field(placement):
    """A member's placement as its run record keeps it (the placement job's id is added once it is submitted)."""
    return None if placement is None else {"rule": placement.rule, "with": list(placement.anchors), "job_id": None}


def _placed(placers, jobs, submitted):
    """Each placement job's (member, anchor ids, script) with the placed member's run record (submitted in ``jobs``' order)."""
    records = {id(member): record for (member, _), record in zip(jobs, submitted)}
    return [(placer, records[id(placer[0])]) for placer in placers]


def _helper_options(site):
    """sbatch options of orch's own small jobs (placement, conductor): the site's account, where it has one."""
    return ("--account=" + site.account,) if site.account else ()


def members_of(record, records=None):
    """The member run records of an experiment (as the registry holds them)."""
    by_id = {r["id"]: r for r in (records if records is not None else registry.all_runs())}
    return [by_id[m["id"]] for m in record["members"] if m["id"] in by_id]


def stop_experiment(record, *, runner=run):
    """Cancel what is left of an experiment: its members, its placement jobs and its conductor; return the members' records."""
    from orch.errors import SchedulerError

    members = cancel_runs(members_of(record), runner=runner)
    for job_id in list(record["placement_job_ids"]) + [record["conductor_job_id"]]:
        if job_id:
            try:
                scheduler.cancel([job_id], remote=remote_of(record), runner=runner)
            except SchedulerError:
                pass  # it has run already: nothing left to stop
    refresh_experiments([registry.load(record["id"])], runner=runner)
    return members


def refresh_experiments(records, *, runner=run):
    """Members refreshed (one squeue per login node), then each experiment's state derived from them."""
    from orch.lifecycle import experiment_state

    experiments = [r for r in records if r["role"] == "experiment"]
    if not experiments:
        return refresh(records, runner=runner)
    everything = registry.all_runs()
    wanted = {m["id"] for e in experiments for m in e["members"]} | {r["id"] for r in records if r["role"] != "experiment"}
    fresh = {r["id"]: r for r in refresh([r for r in everything if r["id"] in wanted], runner=runner)}
    out = []
    for record in records:
        if record["role"] != "experiment":
            out.append(fresh.get(record["id"], record))
            continue
        members = [fresh[m["id"]] for m in record["members"] if m["id"] in fresh]
        state, reason = experiment_state(members) if members else (record["state"], record["reason"])
        if record["state"] in TERMINAL:
            out.append(record)
            continue
        if state == "failed":
            # the clients would only fail on their own a little later: stop them now; the conductor then stops the rest
            waiting = [m for m in members if m["role"] == "client" and m["state"] not in TERMINAL]
            if waiting:
                cancel_runs(waiting, wait=0, runner=runner)
        out.append(registry.update(record["id"], lambda r, s=state, why=reason: moved(r, s, why, registry.now())))
    return out


def wait_for(key, wanted, timeout, *, runner=run, clock=time.monotonic, sleep=time.sleep):
    """Poll until run ``key`` (a job or an experiment) reaches ``wanted``; the interval grows while nothing changes."""
    deadline = clock() + timeout
    interval = 0.5
    last = None
    while True:
        record = refresh_experiments([registry.find(key)], runner=runner)[0]
        if reached(record, wanted):
            return record
        seen = (record["state"], record["ready"])
        interval = 0.5 if seen != last else min(interval * 1.5, 5.0)
        last = seen
        left = deadline - clock()
        if left <= 0:
            raise WaitFailed("%s still %s after %s s (waiting for %s)" % (record["id"], record["state"], timeout, wanted))
        sleep(min(interval, left))


def documents_of(record, *, runner=run):
    """Every results document of a run: a job's own, or an experiment's clients' all."""
    if record["role"] == "experiment":
        return [d for member in members_of(record) if member["role"] == "client" for d in result_documents(member, runner=runner)]
    return result_documents(record, runner=runner)
