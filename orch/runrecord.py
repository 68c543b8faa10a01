"""The run record: what the registry keeps of one submission (a job, or an experiment), typed and immutable.

A ``Run`` is a pyrsistent ``PRecord``: read it like the JSON it is stored as
(``run["state"]``, ``run.get("endpoint")``), change it only through the pure
functions here, which return a new record. ``new_run`` is the one place a
record is made; ``moved`` and ``observed`` are its transitions; ``as_json`` and
``from_json`` cross the registry's file boundary.
"""
import json

from pyrsistent import PRecord, field, freeze, pvector, thaw

from orch.errors import NotFound
from orch.lifecycle import reconcile
from orch.placement import placement_reason

__all__ = ("Run", "new_run", "moved", "observed", "named", "as_json", "from_json", "STATES")

STATES = ("created", "submitted", "pending", "running", "completed", "failed", "cancelled")
ROLES = ("service", "client", "experiment")
OPTIONAL_STR = (str, type(None))


def _job_id(value):
    return None if value is None else str(value)


def _history(items):
    return pvector(tuple(item) for item in items)


class Run(PRecord):
    id = field(type=str, mandatory=True)
    name = field(type=str, mandatory=True)
    kind = field(type=str, mandatory=True)
    role = field(type=str, mandatory=True, invariant=lambda r: (r in ROLES, "role %r" % r))
    job_name = field(type=str, mandatory=True)
    # the recipe file (absolute), or "<...>" for text that came from elsewhere
    recipe = field(type=str, mandatory=True)
    site = field(type=str, mandatory=True)
    runtime = field(type=str, mandatory=True)
    # "user@host[:port]" of the login node, or None for this machine
    remote = field(type=OPTIONAL_STR, initial=None)
    run_dir = field(type=str, mandatory=True)
    endpoints_dir = field(type=str, mandatory=True)
    job_id = field(type=OPTIONAL_STR, initial=None, factory=_job_id)
    state = field(type=str, initial="created", invariant=lambda s: (s in STATES, "state %r" % s))
    reason = field(type=str, initial="")
    ready = field(type=bool, initial=False)
    node = field(type=str, initial="")
    elapsed = field(type=str, initial="")
    # the service's published endpoint (its ready marker), once it is ready
    endpoint = field(initial=None, factory=freeze)
    created_at = field(type=(int, float), initial=0)
    # (state, time, reason) for every state the run was seen in
    history = field(initial=pvector(), factory=_history)
    # an experiment's member: the run id of its experiment, its name there, whether it is the monitoring's
    experiment = field(type=OPTIONAL_STR, initial=None)
    alias = field(type=OPTIONAL_STR, initial=None)
    monitoring = field(type=bool, initial=False)
    # a placed member: its placement ({rule, with: [services], job_id: the placement job}), and once the placement job
    # has acted, what it did (its state/placement marker: released, nodes, reason)
    placement = field(initial=None, factory=freeze)
    placed = field(initial=None, factory=freeze)
    # an experiment: its members ({id, role, alias, monitoring}), its conductor's job, its placement jobs, keep_services
    members = field(initial=pvector(), factory=freeze)
    conductor_job_id = field(type=OPTIONAL_STR, initial=None, factory=_job_id)
    placement_job_ids = field(initial=pvector(), factory=lambda ids: pvector(str(i) for i in ids))
    keep_services = field(type=bool, initial=False)


def new_run(at, **fields):
    """A run record in state ``created`` at time ``at`` (epoch seconds), with its first history entry."""
    return Run.create(dict(fields, state="created", reason="", created_at=at, history=[("created", at, "")]))


def moved(run, state, reason, at):
    """The run in ``state`` (with ``reason``) since ``at``; the same record when nothing changed.

    >>> r = moved(new_run(1.0, id="a", name="n", kind="redis", role="service", job_name="n_a", recipe="<r>",
    ...                    site="local", runtime="host", run_dir="/r", endpoints_dir="/e"), "pending", "Priority", 2.0)
    >>> r["state"], list(r["history"][-1])
    ('pending', ['pending', 2.0, 'Priority'])
    """
    if run["state"] == state and run["reason"] == reason:
        return run
    return run.set(state=state, reason=reason, history=run["history"].append((state, at, reason)))


def observed(run, view, finished, ready, at, placed=None):
    """The run after one look at the world: the scheduler's ``view`` (a ``SlurmJob`` or None),
    the job's ``finished`` marker and its ``ready`` marker (parsed, or None); for a placed member,
    what its placement job did (its ``state/placement`` marker, or None when it has not acted yet).
    """
    state, reason = reconcile(run["state"], view, finished)
    placed = run["placed"] if placed is None else freeze(placed)
    if run["placement"] is not None and reason is not None:
        reason = placement_reason(run["placement"], placed, state, reason, run["placement"].get("job_id"))
    new = moved(run.set(placed=placed), state, run["reason"] if reason is None else reason, at)
    if view is not None:
        new = new.set(node=view.node or new["node"], elapsed=view.elapsed)
    if ready is not None:
        new = new.set(ready=True, endpoint=freeze(ready))
    return new


def as_json(run):
    """The record as the registry stores it."""
    return json.dumps(thaw(dict(run)), indent=2, sort_keys=True) + "\n"


def from_json(text):
    """The record a registry file holds; fields it does not know are left out (an older or newer orch wrote them)."""
    return Run.create(json.loads(text), ignore_extra=True)


def named(key, runs):
    """The run ``key`` names: its id, a unique id prefix, its job name or its SLURM job id (the newest of several)."""
    exact = [r for r in runs if key in (r["id"], r["job_name"], str(r["job_id"]))]
    if exact:
        return exact[-1]
    prefixed = [r for r in runs if r["id"].startswith(key)]
    if len(prefixed) == 1:
        return prefixed[0]
    if prefixed:
        raise NotFound("%r matches several runs: %s" % (key, ", ".join(r["id"] for r in prefixed)))
    raise NotFound("no run %r (orch status lists them)" % key)
