"""Submitting recipes and following their jobs: the registry, the scheduler and the job's markers together.

Everything that touches the world goes through ``orch.slurm`` (processes)
and ``orch.registry`` (the run records); the decisions are ``orch.lifecycle``'s.
"""
import json
import os
import time
import uuid

from orch import registry, slurm
from orch.errors import Problem, RecipeError
from orch.lifecycle import TERMINAL, parse_marker, reconcile
from orch.recipe import parse_job

__all__ = (
    "submit_recipe", "submit_text", "refresh", "wait_for", "cancel_runs", "log_files", "read_log", "result_documents", "as_json",
    "WaitFailed", "submit_job", "run_experiment", "refresh_experiments", "stop_experiment", "members_of",
)


class WaitFailed(Exception):
    """The run ended somewhere else than the state waited for, or the wait timed out."""


def _new_id():
    return uuid.uuid4().hex[:8]


def submit_recipe(path, *, site="meluxina", runtime="apptainer", remote=None, run_id=None, sbatch_options=(),
                  target=None, target_endpoint=None, kinds=None, runner=slurm.run):
    """Validate, render, register and submit one recipe; return its run record.

    + target: a service's run record: the client loads exactly that service (its
      endpoint file), and starts only after it has (``--dependency=after:``)
    + target_endpoint: a URL to load instead of the recipe's target

    A recipe problem raises before anything is created; a refused submission
    removes the registry entry again, so no record claims a job that does not exist.
    """
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as error:
        raise RecipeError([Problem(str(path), 0, "", "cannot read the recipe: %s" % getattr(error, "strerror", error))]) from None
    return submit_text(text, str(path), site=site, runtime=runtime, remote=remote, run_id=run_id, sbatch_options=sbatch_options,
                       target=target, target_endpoint=target_endpoint, kinds=kinds, runner=runner)


def submit_text(text, source, *, site="meluxina", runtime="apptainer", remote=None, run_id=None, sbatch_options=(),
                target=None, target_endpoint=None, endpoints_dir=None, extra=None, adjust=None, kinds=None, runner=slurm.run):
    """``submit_recipe`` for recipe text (``source`` names it in errors); ``extra`` fields go into the record.

    + adjust: ``Job -> Job`` applied before rendering (what an experiment adds: exporters, its sweep)
    """
    parse_job(text, source, site=site, runtime=runtime, kinds=kinds)  # every recipe problem, before any effect

    run_id = run_id or _new_id()
    if remote is not None:
        base = "%s/orch-runs" % slurm.remote_home(remote, runner=runner)
        job_run_dir, endpoints = "%s/%s" % (base, run_id), "%s/endpoints" % base
    else:
        job_run_dir, endpoints = registry.run_dir(run_id), os.path.join(registry.home(), "endpoints")
    endpoints = endpoints_dir or endpoints
    job = parse_job(text, source, site=site, runtime=runtime, job_id=run_id, run_dir=job_run_dir,
                    endpoints_dir=endpoints, kinds=kinds)
    job, sbatch_options = _aimed(job, target, target_endpoint, remote, tuple(sbatch_options))
    if adjust is not None:
        job = adjust(job)
    return submit_job(job, text, source, site=site, runtime=runtime, remote=remote, sbatch_options=sbatch_options, extra=extra,
                      kinds=kinds, runner=runner)


def submit_job(job, text, source, *, site, runtime, remote=None, sbatch_options=(), extra=None, kinds=None, runner=slurm.run):
    """Register, render and submit a job record built from recipe ``text``; return its run record.

    A refused submission removes the registry entry again.
    """
    from orch import render_job

    run_id, job_run_dir, endpoints = job.id, job.run_dir, job.endpoints_dir
    script = render_job(job, kinds)
    record = {
        "id": run_id,
        "name": job.name,
        "kind": job.kind,
        "role": job.role,
        "job_name": job.job_name,
        "recipe": os.path.abspath(source) if not source.startswith("<") else source,
        "site": site,
        "runtime": runtime,
        "remote": _remote_text(remote),
        "run_dir": job_run_dir,
        "endpoints_dir": endpoints,
        "job_id": None,
        "state": "created",
        "reason": "",
        "ready": False,
        "node": "",
        "elapsed": "",
        "endpoint": None,
        "created_at": registry.now(),
        "history": [["created", registry.now(), ""]],
    }
    record.update(extra or {})
    registry.create(run_id, record, files=(("recipe.yaml", text), ("script.sbatch", script)))
    try:
        slurm.make_dirs(job_run_dir + "/logs", remote=remote, runner=runner)
        job_id = slurm.submit(script, options=sbatch_options, remote=remote, runner=runner)
    except BaseException:
        registry.remove(run_id)
        raise
    return registry.update(run_id, lambda r: _moved(dict(r, job_id=job_id), "submitted", ""))


def _aimed(job, target, target_endpoint, remote, options):
    """The job pointed at a given service run or URL, and the sbatch options that go with it."""
    if job.role != "client" or (target is None and target_endpoint is None):
        if target is not None or target_endpoint is not None:
            raise RecipeError([Problem("--target", 0, "", "only a client recipe takes a target")])
        return job, options
    if target_endpoint is not None:
        from urllib.parse import urlsplit

        parts = urlsplit(target_endpoint)
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            port = None
        if parts.scheme not in ("http", "https") or not parts.hostname or port is None:
            raise RecipeError([Problem("--target-endpoint", 0, "", "%r is not an http(s) URL with a host" % target_endpoint)])
        return job.set(target=job.target.set(endpoint=target_endpoint, host=parts.hostname, port=port, scheme=parts.scheme)), options
    if target.get("role") != "service":
        raise RecipeError([Problem("--target", 0, "", "%s is a %s, not a service" % (target["id"], target.get("role")))])
    if (target.get("remote") or None) != _remote_text(remote):
        raise RecipeError([Problem("--target", 0, "", "%s runs on %s: submit the client there too" % (target["id"], target.get("remote") or "this machine"))])
    if job.target.kind and target["kind"] != job.target.kind:
        raise RecipeError([Problem("--target", 0, "", "%s is a %s service; this client loads %s" % (target["id"], target["kind"], job.target.kind))])
    # that very service: its own endpoint file, in its endpoints directory, once it has started
    aimed = job.set(endpoints_dir=target["endpoints_dir"], target=job.target.set(name=target["job_name"]))
    return aimed, options + ("--dependency=after:%s" % target["job_id"],)


def result_documents(record, *, runner=slurm.run):
    """Every results document the run wrote (one per array task), oldest task first; an experiment's clients' all."""
    from orch.results import SCHEMA

    if record.get("role") == "experiment":
        return [d for member in members_of(record) if member["role"] == "client" for d in result_documents(member, runner=runner)]

    remote = remote_of(record)
    results = record["run_dir"] + "/results"
    documents = []
    for name in slurm.list_dir(results, remote=remote, runner=runner):
        if not name.endswith(".json") or name.startswith("."):
            continue
        text = slurm.read_text(results + "/" + name, remote=remote, runner=runner)
        try:
            document = json.loads(text) if text else None
        except ValueError:
            continue
        if isinstance(document, dict) and document.get("schema") == SCHEMA:
            documents.append(document)
    return sorted(documents, key=lambda d: int(d.get("environment", {}).get("array_task") or 0))


def _remote_text(remote):
    if remote is None:
        return None
    return "%s:%d" % (remote.destination, remote.port) if remote.port else remote.destination


def remote_of(record):
    return slurm.parse_remote(record["remote"]) if record.get("remote") else None


def _moved(record, state, reason):
    if record["state"] == state and record.get("reason") == reason:
        return record
    history = list(record.get("history", ())) + [[state, registry.now(), reason]]
    return dict(record, state=state, reason=reason, history=history)


def _array_view(job_id, jobs):
    """The scheduler's view of a job, or of a job array as one job (its tasks summed up)."""
    if job_id in jobs:
        return jobs[job_id]
    tasks = [job for key, job in jobs.items() if key.startswith(job_id + "_")]
    if not tasks:
        return None
    for state in ("RUNNING", "PENDING", "FAILED", "TIMEOUT", "CANCELLED", "COMPLETED"):
        for task in tasks:
            if task.state.split()[0] == state:
                running = [t.node for t in tasks if t.state.startswith("RUNNING") and t.node]
                return task.set(node=",".join(sorted(set(running))) or task.node)
    return tasks[0]


def _markers(record, runner):
    remote = remote_of(record)
    state_dir = record["run_dir"] + "/state"
    finished = parse_marker(slurm.read_text(state_dir + "/finished", remote=remote, runner=runner))
    ready = None
    if not record.get("ready"):
        ready = parse_marker(slurm.read_text(state_dir + "/ready", remote=remote, runner=runner))
    return finished, ready


def refresh(records, *, runner=slurm.run):
    """Bring live records up to date: one squeue per login node per call; return all records, updated."""
    live = [r for r in records if r["state"] not in TERMINAL and r.get("job_id")]
    views = {}
    for remote_text in sorted({r.get("remote") or "" for r in live}):
        remote = slurm.parse_remote(remote_text) if remote_text else None
        views[remote_text] = slurm.queue(remote=remote, runner=runner)
    updated = {}
    for record in live:
        view = _array_view(str(record["job_id"]), views[record.get("remote") or ""])
        if view is None and record["state"] != "submitted":
            # squeue has dropped it: accounting (or the controller) may still say how it ended
            view = slurm.accounted_job(record["job_id"], remote=remote_of(record), runner=runner)
        finished, ready = _markers(record, runner)
        state, reason = reconcile(record["state"], view, finished)

        def change(current, view=view, state=state, reason=reason, ready=ready):
            new = _moved(current, state, current.get("reason", "") if reason is None else reason)
            if view is not None:
                new = dict(new, node=view.node or new.get("node", ""), elapsed=view.elapsed)
            if ready is not None:
                new = dict(new, ready=True, endpoint=ready)
            return new

        updated[record["id"]] = registry.update(record["id"], change)
    return [updated.get(r["id"], r) for r in records]


def reached(record, wanted):
    """True when ``record`` is in the state waited for; raises ``WaitFailed`` when it never will be."""
    state = record["state"]
    if wanted == "done":
        if state in TERMINAL:
            if state != "completed":
                raise WaitFailed("%s %s%s" % (record["id"], state, _because(record)))
            return True
        return False
    if wanted == "ready":
        if state == "running" and record.get("ready"):
            return True
    elif state == wanted:
        return True
    if state in TERMINAL:
        raise WaitFailed("%s ended %s%s before reaching %s" % (record["id"], state, _because(record), wanted))
    return False


def _because(record):
    return ": %s" % record["reason"] if record.get("reason") else ""


def wait_for(key, wanted, timeout, *, runner=slurm.run, clock=time.monotonic, sleep=time.sleep):
    """Poll until run ``key`` reaches ``wanted``; the interval grows while nothing changes."""
    deadline = clock() + timeout
    interval = 0.5
    last = None
    while True:
        record = refresh_experiments([registry.find(key)], runner=runner)[0]
        if reached(record, wanted):
            return record
        seen = (record["state"], record.get("ready"))
        interval = 0.5 if seen != last else min(interval * 1.5, 5.0)
        last = seen
        left = deadline - clock()
        if left <= 0:
            raise WaitFailed("%s still %s after %s s (waiting for %s)" % (record["id"], record["state"], timeout, wanted))
        sleep(min(interval, left))


def cancel_runs(records, *, wait=30, runner=slurm.run, clock=time.monotonic, sleep=time.sleep):
    """scancel the runs' jobs and wait (bounded) until SLURM has ended them; return the records."""
    live = [r for r in records if r["state"] not in TERMINAL and r.get("job_id")]
    for remote_text in sorted({r.get("remote") or "" for r in live}):
        ids = [r["job_id"] for r in live if (r.get("remote") or "") == remote_text]
        slurm.cancel(ids, remote=slurm.parse_remote(remote_text) if remote_text else None, runner=runner)
    deadline = clock() + wait
    while True:
        records = refresh(records, runner=runner)
        if all(r["state"] in TERMINAL for r in records if r.get("job_id")) or clock() >= deadline:
            return records
        sleep(0.5)


def log_files(record, *, runner=slurm.run):
    """The job's stdout/stderr files (several for an array), by name."""
    logs = record["run_dir"] + "/logs"
    prefix = record["job_name"] + "-"
    names = slurm.list_dir(logs, remote=remote_of(record), runner=runner)
    return [logs + "/" + name for name in names if name.startswith(prefix) and name.endswith((".out", ".err"))]


def read_log(path, record, offset=0, *, runner=slurm.run):
    """The log's text from byte ``offset`` on ('' when it is not there yet)."""
    remote = remote_of(record)
    if remote is None:
        try:
            with open(path, "rb") as handle:
                handle.seek(offset)
                return handle.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""
    result = runner(("tail", "-c", "+%d" % (offset + 1), path), remote=remote)
    return result.stdout if result.exit_code == 0 else ""


def as_json(records):
    fields = ("id", "job_id", "name", "kind", "role", "state", "reason", "ready", "node", "elapsed", "endpoint", "run_dir", "remote")
    return json.dumps([{f: r.get(f) for f in fields} for r in records], indent=2)


# ---------------------------------------------------------------- experiments


def run_experiment(path, *, site="meluxina", runtime="apptainer", remote=None, kinds=None, runner=slurm.run):
    """Submit an experiment: its monitoring, its services, each client aimed at its service, then the conductor.

    Every member is checked before anything is submitted; if a submission is
    refused part-way, what was already submitted is cancelled and forgotten.
    """
    from orch.experiments import conductor_of, member_jobs, parse_experiment

    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as error:
        raise RecipeError([Problem(str(path), 0, "", "cannot read the experiment: %s" % getattr(error, "strerror", error))]) from None
    experiment = parse_experiment(text, str(path), site=site, runtime=runtime, kinds=kinds)
    run_id = _new_id()
    started = int(time.time())
    runs_root = registry.runs_dir() if remote is None else "%s/orch-runs" % slurm.remote_home(remote, runner=runner)
    run_dir = "%s/%s" % (runs_root, run_id)
    endpoints = run_dir + "/endpoints"
    ids = {}
    jobs = member_jobs(experiment, run_id, runs_root, site=site, runtime=runtime,
                       member_id=lambda index: ids.setdefault(index, _new_id()), kinds=kinds)
    record = {
        "id": run_id, "name": experiment.name, "kind": "experiment", "role": "experiment",
        "job_name": "%s_%s" % (experiment.name, run_id), "recipe": os.path.abspath(str(path)), "site": site,
        "runtime": runtime, "remote": _remote_text(remote), "run_dir": run_dir, "endpoints_dir": endpoints,
        "job_id": None, "state": "created", "reason": "", "ready": False, "node": "", "elapsed": "", "endpoint": None,
        "keep_services": experiment.keep_services, "members": [], "conductor_job_id": None,
        "created_at": registry.now(), "history": [["created", registry.now(), ""]],
    }
    registry.create(run_id, record, files=(("experiment.yaml", text),))
    submitted = []
    try:
        slurm.make_dirs(run_dir + "/logs", remote=remote, runner=runner)
        services = {}
        # member_jobs orders them: the monitoring first (it is up to watch the services start), then
        # the services, then each client aimed at its service and started after it
        for member, job in jobs:
            extra = {"experiment": run_id, "alias": member.alias}
            options = ()
            if member.role == "service":
                extra["monitoring"] = member.monitoring
            else:
                options = ("--dependency=after:%s" % services[member.target]["job_id"],)
            member_record = submit_job(job, member.text, member.source, site=site, runtime=runtime, remote=remote,
                                       sbatch_options=options, extra=extra, kinds=kinds, runner=runner)
            submitted.append(member_record)
            if member.role == "service":
                services[member.alias] = member_record
        conductor = None
        script = conductor_of(experiment, run_id, run_dir, jobs, [m["job_id"] for m in submitted], started)
        if script is not None:
            options = ("--dependency=afterany:" + ":".join(m["job_id"] for m in submitted if m["role"] == "client"),)
            from orch.sites import site_named

            if site_named(site).account:
                options += ("--account=" + site_named(site).account,)
            conductor = slurm.submit(script, options=options, remote=remote, runner=runner)
    except BaseException:
        live = [m["job_id"] for m in submitted]
        if live:
            try:
                slurm.cancel(live, remote=remote, runner=runner)
            except Exception:  # the submission error is the one to report
                pass
        for member_record in submitted:
            registry.remove(member_record["id"])
        registry.remove(run_id)
        raise
    members = [{"id": m["id"], "role": m["role"], "alias": m["alias"], "monitoring": m.get("monitoring", False)} for m in submitted]
    return registry.update(run_id, lambda r: _moved(dict(r, members=members, conductor_job_id=conductor), "submitted", ""))


def members_of(record, records=None):
    """The member run records of an experiment (as the registry holds them)."""
    by_id = {r["id"]: r for r in (records if records is not None else registry.all_runs())}
    return [by_id[m["id"]] for m in record.get("members", ()) if m["id"] in by_id]


def stop_experiment(record, *, runner=slurm.run):
    """Cancel what is left of an experiment: its members and its conductor; return the members' records."""
    members = cancel_runs(members_of(record), runner=runner)
    if record.get("conductor_job_id"):
        try:
            slurm.cancel([record["conductor_job_id"]], remote=remote_of(record), runner=runner)
        except slurm.SchedulerError:
            pass  # it has run already: nothing left to stop
    refresh_experiments([registry.load(record["id"])], runner=runner)
    return members


def refresh_experiments(records, *, runner=slurm.run):
    """Members refreshed (one squeue per login node), then each experiment's state derived from them."""
    from orch.experiments import experiment_state

    experiments = [r for r in records if r.get("role") == "experiment"]
    if not experiments:
        return refresh(records, runner=runner)
    everything = registry.all_runs()
    wanted = {m["id"] for e in experiments for m in e.get("members", ())} | {r["id"] for r in records if r.get("role") != "experiment"}
    fresh = {r["id"]: r for r in refresh([r for r in everything if r["id"] in wanted], runner=runner)}
    out = []
    for record in records:
        if record.get("role") != "experiment":
            out.append(fresh.get(record["id"], record))
            continue
        members = [fresh[m["id"]] for m in record.get("members", ()) if m["id"] in fresh]
        state, reason = experiment_state(members) if members else (record["state"], record.get("reason", ""))
        if record["state"] in TERMINAL:
            out.append(record)
            continue
        if state == "failed":
            # the clients would only fail on their own a little later: stop them now; the conductor then stops the rest
            waiting = [m for m in members if m["role"] == "client" and m["state"] not in TERMINAL]
            if waiting:
                cancel_runs(waiting, wait=0, runner=runner)
        out.append(registry.update(record["id"], lambda r, s=state, why=reason: _moved(r, s, why)))
    return out
