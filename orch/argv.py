"""The command lines orch runs, as pure functions: sbatch, squeue, sacct, scontrol, scancel, and ssh around them.

The effects layer (``orch.effects``) runs what these build; nothing here reads
the environment or touches a process, so every line is testable as data.
"""
import re

from pyrsistent import PClass, field

from orch.lifecycle import SQUEUE_FORMAT
from orch.quoting import literal

__all__ = (
    "Remote", "parse_remote", "connection_options", "ssh_argv", "sbatch_argv", "squeue_argv", "sacct_argv",
    "scontrol_argv", "scancel_argv", "parse_job_id", "reason_line",
)


class Remote(PClass):
    """A login node: ``user@host:port`` (user and port optional; an ssh config alias works)."""

    destination = field(type=str, mandatory=True)
    port = field(type=(int, type(None)), initial=None)
    options = field(type=tuple, initial=())


REMOTE = re.compile(r"(?:(?P<user>[A-Za-z0-9_.-]+)@)?(?P<host>[A-Za-z0-9_.-]+)(?::(?P<port>\d{1,5}))?")


def parse_remote(text, options=()):
    """``Remote`` from ``user@host:port``.

    >>> parse_remote("u100@login.lxp.lu:8822").port
    8822
    """
    match = REMOTE.fullmatch(text or "")
    if not match:
        raise ValueError("not a login node (user@host[:port]): %r" % text)
    destination = "%s@%s" % (match["user"], match["host"]) if match["user"] else match["host"]
    return Remote(destination=destination, port=int(match["port"]) if match["port"] else None, options=tuple(options))


def connection_options(remote, ssh_config=None):
    """The ssh options that say how to reach the login node: an ssh config file, the port, the remote's own options.

    >>> connection_options(parse_remote("u@h:8822"), "/etc/orch-ssh")
    ('-F', '/etc/orch-ssh', '-p', '8822')
    """
    words = ("-F", ssh_config) if ssh_config else ()
    if remote.port:
        words += ("-p", str(remote.port))
    return words + tuple(remote.options)


def ssh_argv(remote, argv, *, control_path, ssh_config=None):
    """The ssh command that runs ``argv`` on the login node, one connection reused for a minute.

    + control_path: where ssh keeps the shared connection's socket (``~/.ssh/orch-%C``)
    The remote shell joins ssh's arguments into a command line, so each word is quoted.

    >>> ssh_argv(parse_remote("u@h:22"), ("cat", "a b"), control_path="/c")[-2:]
    ('--', "cat 'a b'")
    """
    words = (
        "ssh",
        "-o", "BatchMode=yes",
        "-o", "ConnectTimeout=15",
        "-o", "ControlMaster=auto",
        "-o", "ControlPath=%s" % control_path,
        "-o", "ControlPersist=60",
    )
    return words + connection_options(remote, ssh_config) + (remote.destination, "--", " ".join(literal(w) for w in argv))


def sbatch_argv(options=()):
    """sbatch with the script on its stdin (nothing is uploaded), printing only the job id."""
    return ("sbatch", "--parsable") + tuple(options)


def squeue_argv():
    """Every job of this user that SLURM still knows, finished ones too, one line each."""
    return ("squeue", "--me", "--noheader", "--states=all", "--format=" + SQUEUE_FORMAT)


def sacct_argv(job_id):
    return ("sacct", "--noheader", "--parsable2", "--allocations", "--jobs", str(job_id),
            "--format=JobID,State,NodeList,Elapsed,ExitCode")


def scontrol_argv(job_id):
    return ("scontrol", "show", "job", "-o", str(job_id))


def scancel_argv(job_ids):
    return ("scancel",) + tuple(str(j) for j in job_ids)


JOB_ID = re.compile(r"^(\d+)(?:;\S+)?$")


def parse_job_id(stdout):
    """The job id from ``sbatch --parsable`` (``12`` or ``12;cluster``), or None.

    >>> parse_job_id("4242;meluxina\\n")
    '4242'
    """
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    match = JOB_ID.match(lines[-1]) if lines else None
    return match.group(1) if match else None


def reason_line(text):
    """The last non-empty line of a tool's output: where SLURM and ssh put their reason.

    >>> reason_line("warning\\nsbatch: error: Batch job submission failed\\n")
    'sbatch: error: Batch job submission failed'
    """
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""
