"""The run registry on disk: every submission, its job id, state history and endpoint.

``$ORCH_HOME`` (default ``~/.orch``) holds ``runs/<id>/run.json`` beside the
recipe and the rendered script; for a local submission the same directory
is the job's run directory (logs, state markers, results). Writes are
atomic (temp file, then rename) and updates hold a lock, so concurrent
``orch`` processes and crashes never leave a torn record.
"""
import fcntl
import json
import os
import time
from contextlib import contextmanager

from orch.errors import OrchError

__all__ = ("home", "runs_dir", "run_dir", "create", "load", "save", "update", "remove", "all_runs", "find", "NotFound")


class NotFound(OrchError, LookupError):
    """No run with that id."""


def home():
    return os.path.abspath(os.environ.get("ORCH_HOME") or os.path.join(os.path.expanduser("~"), ".orch"))


def runs_dir():
    return os.path.join(home(), "runs")


def run_dir(run_id):
    return os.path.join(runs_dir(), run_id)


def _record_path(run_id):
    return os.path.join(run_dir(run_id), "run.json")


def write_atomically(path, text):
    tmp = "%s.%d.tmp" % (path, os.getpid())
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def create(run_id, record, files=()):
    """Make the run's directory (failing if the id exists) and write its record and files."""
    os.makedirs(runs_dir(), exist_ok=True)
    try:
        os.mkdir(run_dir(run_id))
    except FileExistsError:
        raise OrchError("a run %r exists already (%s)" % (run_id, run_dir(run_id))) from None
    for name, text in files:
        write_atomically(os.path.join(run_dir(run_id), name), text)
    save(run_id, record)


def save(run_id, record):
    write_atomically(_record_path(run_id), json.dumps(record, indent=2, sort_keys=True) + "\n")


def load(run_id):
    try:
        with open(_record_path(run_id), encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise NotFound("no run %r in %s" % (run_id, runs_dir())) from None


@contextmanager
def _locked(run_id):
    with open(os.path.join(run_dir(run_id), ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def update(run_id, change):
    """Apply ``change(record) -> record`` under the run's lock; return the new record."""
    with _locked(run_id):
        record = change(load(run_id))
        save(run_id, record)
        return record


def remove(run_id):
    """Delete a run that never became a job (its submission failed)."""
    import shutil

    shutil.rmtree(run_dir(run_id), ignore_errors=True)


def all_runs():
    """Every run's record, oldest first; a directory without a readable record is skipped."""
    try:
        names = os.listdir(runs_dir())
    except FileNotFoundError:
        return []
    records = []
    for name in names:
        try:
            records.append(load(name))
        except (NotFound, ValueError):
            continue
    return sorted(records, key=lambda r: (r.get("created_at", 0), r["id"]))


def find(key, records=None):
    """The run named by ``key``: its id, a unique id prefix, its job name or its SLURM job id."""
    records = all_runs() if records is None else records
    exact = [r for r in records if key in (r["id"], r.get("job_name"), str(r.get("job_id")))]
    if exact:
        return exact[-1]
    prefixed = [r for r in records if r["id"].startswith(key)]
    if len(prefixed) == 1:
        return prefixed[0]
    if prefixed:
        raise NotFound("%r matches several runs: %s" % (key, ", ".join(r["id"] for r in prefixed)))
    raise NotFound("no run %r (orch status lists them)" % key)


def now():
    return round(time.time(), 3)
