"""A job's lifecycle, reconciled from what SLURM says and what the job wrote (pure).

Created → Submitted → Pending → Running → Completed / Failed / Cancelled.
SLURM's end states that are not a clean finish (TIMEOUT, NODE_FAIL,
OUT_OF_MEMORY, PREEMPTED, ...) become Failed with that state as the reason.
A service is Running in SLURM's sense before it is ready; ``ready`` says
whether its readiness check passed (the job's ``state/ready`` marker).
"""
import json
import re

from pyrsistent import PClass, field

__all__ = (
    "TERMINAL",
    "SlurmJob",
    "orch_state",
    "parse_squeue",
    "parse_scontrol",
    "parse_sacct",
    "parse_marker",
    "reconcile",
    "experiment_state",
    "SQUEUE_FORMAT",
)

TERMINAL = frozenset(("completed", "failed", "cancelled"))

PENDING = frozenset(("PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD", "SPECIAL_EXIT"))
RUNNING = frozenset(("RUNNING", "COMPLETING", "SUSPENDED", "STOPPED", "SIGNALING", "STAGE_OUT", "RESIZING"))
FAILED = frozenset(("FAILED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED", "BOOT_FAIL", "DEADLINE", "REVOKED"))

# one line per job: id | state | nodes | time used | reason
SQUEUE_FORMAT = "%i|%T|%N|%M|%r"


class SlurmJob(PClass):
    """What the scheduler says about one job."""

    job_id = field(type=str, mandatory=True)
    state = field(type=str, mandatory=True)
    node = field(type=str, initial="")
    elapsed = field(type=str, initial="")
    reason = field(type=str, initial="")
    exit_code = field(type=str, initial="")


def orch_state(slurm_state):
    """``(orch state, reason)`` for a SLURM job state.

    >>> orch_state("TIMEOUT")
    ('failed', 'TIMEOUT')
    >>> orch_state("CANCELLED by 0")
    ('cancelled', '')
    """
    base = slurm_state.split()[0].rstrip("+") if slurm_state else ""
    if base in PENDING:
        return "pending", ""
    if base in RUNNING:
        return "running", ""
    if base == "COMPLETED":
        return "completed", ""
    if base == "CANCELLED":
        return "cancelled", ""
    if base in FAILED:
        return "failed", base
    return "pending", "unknown SLURM state %s" % slurm_state


def parse_squeue(text):
    """``{job id: SlurmJob}`` from ``squeue -h -o SQUEUE_FORMAT`` output.

    >>> parse_squeue("12|RUNNING|node1|1:02|None\\n")["12"].node
    'node1'
    """
    jobs = {}
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) < 5 or not parts[0]:
            continue
        job_id, state, node, elapsed, reason = parts[0], parts[1], parts[2], parts[3], "|".join(parts[4:])
        jobs[job_id] = SlurmJob(job_id=job_id, state=state, node=node, elapsed=elapsed,
                                reason="" if reason in ("None", "(null)") else reason)
    return jobs


def parse_sacct(text, job_id):
    """``SlurmJob`` for ``job_id`` from ``sacct --parsable2 --noheader`` (JobID|State|NodeList|Elapsed|ExitCode), or None.

    >>> parse_sacct("12|TIMEOUT|n1|00:02:00|0:0\\n", "12").state
    'TIMEOUT'
    """
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) >= 5 and parts[0] == job_id:
            return SlurmJob(job_id=job_id, state=parts[1], node="" if parts[2] == "None assigned" else parts[2],
                            elapsed=parts[3], exit_code=parts[4])
    return None


FIELD = re.compile(r"(\w+(?:/\w+)?)=(.*?)(?= \w+(?:/\w+)?=|$)")


def parse_scontrol(text):
    """``SlurmJob`` from ``scontrol show job -o ID`` (one line of Key=Value), or None.

    >>> parse_scontrol("JobId=7 JobName=a b JobState=TIMEOUT Reason=TimeLimit NodeList=n1 RunTime=00:01:00 ExitCode=0:9").state
    'TIMEOUT'
    """
    line = text.strip().splitlines()[0] if text.strip() else ""
    values = dict(FIELD.findall(line))
    if "JobId" not in values or "JobState" not in values:
        return None
    return SlurmJob(
        job_id=values["JobId"],
        state=values["JobState"],
        node=values.get("NodeList", "") if values.get("NodeList") != "(null)" else "",
        elapsed=values.get("RunTime", ""),
        reason="" if values.get("Reason") in (None, "None") else values["Reason"],
        exit_code=values.get("ExitCode", ""),
    )


def parse_marker(text):
    """A state marker the job wrote (JSON), or None when it is absent or torn."""
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def reconcile(current, slurm, finished):
    """``(state, reason)`` from the last known state, the scheduler's view and the job's finished marker.

    + current: the state the registry holds
    + slurm: a ``SlurmJob``, or None when the scheduler no longer knows the job
    + finished: the job's ``state/finished`` marker (exit code, reason), or None

    The scheduler decides the state while it knows the job; the job's own
    marker gives the reason (``redis not ready after ...``), and decides the
    state when the scheduler has forgotten the job.
    """
    if current in TERMINAL:
        return current, None
    told = (finished or {}).get("reason") or ""
    if slurm is not None:
        state, reason = orch_state(slurm.state)
        if state == "failed" and told:
            # the job's own words are the better reason; keep SLURM's state word in front
            reason = told if told.startswith(reason) or reason == "FAILED" else "%s: %s" % (reason, told)
        elif state == "pending":
            reason = reason or slurm.reason
        return state, reason
    if finished is not None:
        code = finished.get("exit_code")
        if code == 0:
            return "completed", told
        if code == 143 and not told.startswith("TIMEOUT"):
            return "cancelled", told
        return "failed", told or "exit status %s" % code
    return current, None


def experiment_state(members):
    """``(state, reason)`` of an experiment from its members' records.

    Done when every client has ended: completed if they all completed. A
    failed service fails the experiment at once (its clients stop waiting).
    """
    clients = [m for m in members if m.get("role") == "client"]
    # a monitoring job that fails costs the run its metrics, not its results
    services = [m for m in members if m.get("role") == "service" and not m.get("monitoring")]
    for service in services:
        if service["state"] == "failed":
            return "failed", "service %s failed: %s" % (service.get("alias") or service["name"], service.get("reason") or "")
    terminal = ("completed", "failed", "cancelled")
    if clients and all(c["state"] in terminal for c in clients):
        bad = [c for c in clients if c["state"] != "completed"]
        if not bad:
            return "completed", ""
        why = bad[0].get("reason")
        return bad[0]["state"], "client %s %s%s" % (bad[0].get("alias") or bad[0]["name"], bad[0]["state"], ": " + why if why else "")
    if any(m["state"] == "running" for m in members):
        return "running", ""
    if all(m["state"] in terminal for m in members):
        return "cancelled", "every job ended"
    return "pending", ""
