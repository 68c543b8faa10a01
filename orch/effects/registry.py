"""The run registry on disk: every submission, its job id, state history and endpoint.

``$ORCH_HOME`` (default ``~/.orch``) holds ``runs/<id>/run.json`` beside the
recipe and the rendered script; for a local submission the same directory
is the job's run directory (logs, state markers, results). Writes are
atomic (temp file, then rename) and updates hold a lock, so concurrent
``orch`` processes and crashes never leave a torn record. Records are
``orch.runrecord.Run``; which record a name means is ``runrecord.named``'s call.
"""
import fcntl
import os
import sys
import time
from contextlib import contextmanager

from pyrsistent import InvariantException

from orch.effects.files import write_atomically
from orch.errors import NotFound, OrchError
from orch.runrecord import as_json, from_json, named

__all__ = ("home", "runs_dir", "sites_dir", "new_id", "run_dir", "create", "load", "save", "update", "remove", "all_runs", "find", "now")


def home():
    return os.path.abspath(os.environ.get("ORCH_HOME") or os.path.join(os.path.expanduser("~"), ".orch"))


def runs_dir():
    return os.path.join(home(), "runs")


def new_id():
    """A new run id: 8 hex digits, random."""
    import uuid

    return uuid.uuid4().hex[:8]


def sites_dir():
    """The user's own site profiles (``NAME.yaml``), found by ``--site NAME`` before orch's."""
    return os.path.join(home(), "sites")


def run_dir(run_id):
    return os.path.join(runs_dir(), run_id)


def _record_path(run_id):
    return os.path.join(run_dir(run_id), "run.json")


def create(run, files=()):
    """Make the run's directory (failing if the id exists) and write its record and files (``(name, text)`` pairs)."""
    os.makedirs(runs_dir(), exist_ok=True)
    try:
        os.mkdir(run_dir(run["id"]))
    except FileExistsError:
        raise OrchError("a run %r exists already (%s)" % (run["id"], run_dir(run["id"]))) from None
    for name, text in files:
        write_atomically(os.path.join(run_dir(run["id"]), name), text)
    save(run)


def save(run):
    write_atomically(_record_path(run["id"]), as_json(run))


def load(run_id):
    try:
        with open(_record_path(run_id), encoding="utf-8") as handle:
            return from_json(handle.read())
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
    """Apply ``change(run) -> run`` under the run's lock; return the new record."""
    with _locked(run_id):
        run = change(load(run_id))
        save(run)
        return run


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
    runs = []
    for name in names:
        try:
            runs.append(load(name))
        except NotFound:
            continue  # a directory without a record: a submission that is being made, or was undone
        except (ValueError, TypeError, InvariantException) as error:
            # half a record, or not one of orch's: the others are still listed, and this one is named
            _skipped(name, error)
    return sorted(runs, key=lambda r: (r["created_at"], r["id"]))


_SAID = set()


def _skipped(name, error):
    """One line on stderr, once per process, for a record that cannot be read."""
    if name not in _SAID:
        _SAID.add(name)
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        sys.stderr.write("orch: %s: not a run record orch can read (%s): skipped\n" % (_record_path(name), reason[:200]))


def find(key, runs=None):
    """The run named by ``key`` among ``runs`` (default: every run in the registry)."""
    return named(key, all_runs() if runs is None else runs)


def now():
    """The registry's clock: epoch seconds, to the millisecond."""
    return round(time.time(), 3)
