"""Single jobs: submitting a recipe and following its job, through the registry, the scheduler and the job's markers.

Everything that touches the world goes through ``orch.effects``; the
decisions are pure (``orch.lifecycle``, ``orch.runrecord``). Experiments,
which are made of such jobs, are ``orch.experiment_runs``'.
"""
import json
import os

from orch.argv import parse_remote
from orch.effects import files, registry, scheduler
from orch.effects.registry import new_id
from orch.effects.process import run
from orch.errors import Problem, RecipeError
from orch.lifecycle import TERMINAL, parse_marker
from orch.recipe import parse_job, read_recipe
from orch.runrecord import moved, new_run, observed
from orch.targets import url_target

__all__ = (
    "submit_recipe", "submit_text", "submit_job", "aimed", "refresh", "reached", "cancel_runs", "log_files", "read_log",
    "result_documents", "status_json", "remote_of", "remote_text", "new_id",
)


def submit_recipe(path, *, site="meluxina", runtime=None, remote=None, run_id=None, sbatch_options=(),
                  target=None, target_endpoint=None, kinds=None, runner=run, python=None):
    """Validate, render, register and submit one recipe; return its run record.

    + target: a service's run record: the client loads exactly that service (its
      endpoint file), and starts only after it has (``--dependency=after:``)
    + target_endpoint: a URL to load instead of the recipe's target
    + python: the interpreter a client's load generator runs with on the node (default: ``python3``)

    A recipe problem raises before anything is created; a refused submission
    removes the registry entry again, so no record claims a job that does not exist.
    """
    return submit_text(read_recipe(path), str(path), site=site, runtime=runtime, remote=remote, run_id=run_id,
                       sbatch_options=sbatch_options, target=target, target_endpoint=target_endpoint, kinds=kinds, runner=runner,
                       python=python)


def submit_text(text, source, *, site="meluxina", runtime=None, remote=None, run_id=None, sbatch_options=(),
                target=None, target_endpoint=None, kinds=None, runner=run, python=None):
    """``submit_recipe`` for recipe text (``source`` names it in errors)."""
    parse_job(text, source, site=site, runtime=runtime, kinds=kinds, python=python)  # every problem, before any effect

    run_id = run_id or new_id()
    if remote is not None:
        base = "%s/orch-runs" % scheduler.remote_home(remote, runner=runner)
        job_run_dir, endpoints = "%s/%s" % (base, run_id), "%s/endpoints" % base
    else:
        job_run_dir, endpoints = registry.run_dir(run_id), os.path.join(registry.home(), "endpoints")
    job = parse_job(text, source, site=site, runtime=runtime, job_id=run_id, run_dir=job_run_dir,
                    endpoints_dir=endpoints, kinds=kinds, python=python)
    job, sbatch_options = aimed(job, target, target_endpoint, remote, tuple(sbatch_options))
    return submit_job(job, text, source, site=site, runtime=runtime, remote=remote, sbatch_options=sbatch_options,
                      kinds=kinds, runner=runner)


def submit_job(job, text, source, *, site, runtime, remote=None, sbatch_options=(), extra=None, kinds=None, runner=run):
    """Register, render and submit a job record built from recipe ``text``; return its run record.

    + extra: fields of the run record beyond the job's own (an experiment member's alias, ...)
    A refused submission removes the registry entry again.
    """
    from orch import render_job

    script = render_job(job, kinds)
    record = new_run(
        registry.now(), id=job.id, name=job.name, kind=job.kind, role=job.role, job_name=job.job_name,
        recipe=os.path.abspath(source) if not source.startswith("<") else source, site=site, runtime=job.runtime,
        remote=remote_text(remote), run_dir=job.run_dir, endpoints_dir=job.endpoints_dir, **(extra or {}),
    )
    registry.create(record, files=(("recipe.yaml", text), ("script.sbatch", script)))
    try:
        files.make_dirs(job.run_dir + "/logs", remote=remote, runner=runner)
        job_id = scheduler.submit(script, options=sbatch_options, remote=remote, runner=runner)
    except BaseException:
        registry.remove(job.id)
        raise
    return registry.update(job.id, lambda r: moved(r.set(job_id=job_id), "submitted", "", registry.now()))


def aimed(job, target, target_endpoint, remote, options):
    """The job pointed at a given service run or URL, and the sbatch options that go with it."""
    if job.role != "client" or (target is None and target_endpoint is None):
        if target is not None or target_endpoint is not None:
            raise RecipeError([Problem("--target", 0, "", "only a client recipe takes a target")])
        return job, options
    if target_endpoint is not None:
        # the URL replaces the recipe's target, and with it the port the recipe expected there
        aimed_target, why = url_target(job.target.set(stated_port=None), target_endpoint)
        if why:
            raise RecipeError([Problem("--target-endpoint", 0, "", why)])
        return job.set(target=aimed_target), options
    if target["role"] != "service":
        raise RecipeError([Problem("--target", 0, "", "%s is a %s, not a service" % (target["id"], target["role"]))])
    if (target["remote"] or None) != remote_text(remote):
        raise RecipeError([Problem("--target", 0, "", "%s runs on %s: submit the client there too" % (target["id"], target["remote"] or "this machine"))])
    if job.target.kind and target["kind"] != job.target.kind:
        raise RecipeError([Problem("--target", 0, "", "%s is a %s service; this client loads %s" % (target["id"], target["kind"], job.target.kind))])
    # that very service: its own endpoint file, in its endpoints directory, once it has started
    aimed_job = job.set(endpoints_dir=target["endpoints_dir"], target=job.target.set(name=target["job_name"]))
    return aimed_job, options + ("--dependency=after:%s" % target["job_id"],)


def result_documents(record, *, runner=run):
    """Every results document a single job wrote (one per array task), oldest task first."""
    from orch.results import SCHEMA

    remote = remote_of(record)
    results = record["run_dir"] + "/results"
    documents = []
    for name in files.list_dir(results, remote=remote, runner=runner):
        if not name.endswith(".json") or name.startswith("."):
            continue
        text = files.read_text(results + "/" + name, remote=remote, runner=runner)
        try:
            document = json.loads(text) if text else None
        except ValueError:
            continue
        if isinstance(document, dict) and document.get("schema") == SCHEMA:
            documents.append(document)
    return sorted(documents, key=lambda d: int(d.get("environment", {}).get("array_task") or 0))


def remote_text(remote):
    """The login node as the record keeps it (``user@host[:port]``), or None for this machine."""
    if remote is None:
        return None
    return "%s:%d" % (remote.destination, remote.port) if remote.port else remote.destination


def remote_of(record):
    return parse_remote(record["remote"]) if record["remote"] else None


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
    """The job's ``finished`` marker, its ``ready`` one (until seen), and a placed member's ``placement`` one (until it is final)."""
    remote = remote_of(record)
    state_dir = record["run_dir"] + "/state"
    finished = parse_marker(files.read_text(state_dir + "/finished", remote=remote, runner=runner))
    ready = placed = None
    if not record["ready"]:
        ready = parse_marker(files.read_text(state_dir + "/ready", remote=remote, runner=runner))
    if record["placement"] is not None and record["placed"] is None:
        placed = parse_marker(files.read_text(state_dir + "/placement", remote=remote, runner=runner))
    return finished, ready, placed


def refresh(records, *, runner=run):
    """Bring live records up to date: one squeue per login node per call; return all records, updated."""
    live = [r for r in records if r["state"] not in TERMINAL and r["job_id"]]
    views = {}
    for where in sorted({r["remote"] or "" for r in live}):
        views[where] = scheduler.queue(remote=parse_remote(where) if where else None, runner=runner)
    updated = {}
    for record in live:
        view = _array_view(record["job_id"], views[record["remote"] or ""])
        if view is None and record["state"] != "submitted":
            # squeue has dropped it: accounting (or the controller) may still say how it ended
            view = scheduler.accounted_job(record["job_id"], remote=remote_of(record), runner=runner)
        finished, ready, placed = _markers(record, runner)
        updated[record["id"]] = registry.update(
            record["id"], lambda current, v=view, f=finished, r=ready, p=placed: observed(current, v, f, r, registry.now(), p))
    return [updated.get(r["id"], r) for r in records]


def reached(record, wanted):
    """True when ``record`` is in the state waited for; raises ``WaitFailed`` when it never will be."""
    from orch.errors import WaitFailed

    state = record["state"]
    if wanted == "done":
        if state in TERMINAL:
            if state != "completed":
                raise WaitFailed("%s %s%s" % (record["id"], state, _because(record)))
            return True
        return False
    if wanted == "ready":
        if state == "running" and record["ready"]:
            return True
    elif state == wanted:
        return True
    if state in TERMINAL:
        raise WaitFailed("%s ended %s%s before reaching %s" % (record["id"], state, _because(record), wanted))
    return False


def _because(record):
    return ": %s" % record["reason"] if record["reason"] else ""


def cancel_runs(records, *, wait=30, runner=run, clock=None, sleep=None):
    """scancel the runs' jobs and wait (bounded) until SLURM has ended them; return the records."""
    import time

    clock, sleep = clock or time.monotonic, sleep or time.sleep
    live = [r for r in records if r["state"] not in TERMINAL and r["job_id"]]
    for where in sorted({r["remote"] or "" for r in live}):
        ids = [r["job_id"] for r in live if (r["remote"] or "") == where]
        scheduler.cancel(ids, remote=parse_remote(where) if where else None, runner=runner)
    deadline = clock() + wait
    while True:
        records = refresh(records, runner=runner)
        if all(r["state"] in TERMINAL for r in records if r["job_id"]) or clock() >= deadline:
            return records
        sleep(0.5)


def log_files(record, *, runner=run):
    """The job's stdout/stderr files (several for an array), by name."""
    logs = record["run_dir"] + "/logs"
    prefix = record["job_name"] + "-"
    names = files.list_dir(logs, remote=remote_of(record), runner=runner)
    return [logs + "/" + name for name in names if name.startswith(prefix) and name.endswith((".out", ".err"))]


def read_log(path, record, offset=0, *, runner=run):
    """The log's text from byte ``offset`` on ('' when it is not there yet)."""
    return files.read_from(path, offset, remote=remote_of(record), runner=runner)


STATUS_FIELDS = ("id", "job_id", "name", "kind", "role", "state", "reason", "ready", "node", "elapsed", "endpoint", "run_dir", "remote")


def status_json(records):
    """``orch status --json``: the fields a script may rely on, for each record."""
    from pyrsistent import thaw

    def value(field, record):
        found = thaw(record[field])
        # a published endpoint's keys in a fixed order, whatever order the record keeps them in
        return {k: found[k] for k in sorted(found)} if isinstance(found, dict) else found

    return json.dumps([{f: value(f, r) for f in STATUS_FIELDS} for r in records], indent=2)
