"""The effects layer: the only code that runs processes (through ``sh``).

Every command runs here or, with ``remote``, through ``ssh`` on a login
node. Functions return records and never print; failures raise
``SubmissionError`` (sbatch said no) or ``ConnectionError_`` (ssh could not
connect), each carrying the tool's own words. ``runner`` arguments let tests
pass a fake in place of the real process runner.
"""
import os
import re

from pyrsistent import PClass, field

from orch.errors import OrchError
from orch.lifecycle import SQUEUE_FORMAT, parse_sacct, parse_scontrol, parse_squeue
from orch.quoting import literal

__all__ = (
    "Completed",
    "Remote",
    "SubmissionError",
    "ConnectionError_",
    "SchedulerError",
    "parse_remote",
    "orch_ssh_config",
    "connection_options",
    "ssh_argv",
    "replace_process",
    "run",
    "submit",
    "queue",
    "show_job",
    "accounted_job",
    "cancel",
    "read_text",
    "make_dirs",
    "list_dir",
    "remote_home",
    "parse_job_id",
)


class SubmissionError(OrchError):
    """sbatch refused the job; the message is SLURM's own."""


class ConnectionError_(OrchError):
    """The login node could not be reached over ssh."""


class SchedulerError(OrchError):
    """squeue, scontrol or scancel failed."""


class Completed(PClass):
    argv = field(type=tuple, mandatory=True)
    exit_code = field(type=int, mandatory=True)
    stdout = field(type=str, initial="")
    stderr = field(type=str, initial="")


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


def orch_ssh_config():
    """The ssh config file of orch's own (``ORCH_SSH_CONFIG``), or None: then the user's ~/.ssh/config applies as usual."""
    return os.environ.get("ORCH_SSH_CONFIG") or None


def connection_options(remote, ssh_config=None):
    """The ssh options that say how to reach the login node: an ssh config file, the port, the remote's own options.

    >>> connection_options(parse_remote("u@h:8822"), "/etc/orch-ssh")
    ('-F', '/etc/orch-ssh', '-p', '8822')
    """
    words = ("-F", ssh_config) if ssh_config else ()
    if remote.port:
        words += ("-p", str(remote.port))
    return words + tuple(remote.options)


def ssh_argv(remote, argv):
    """The ssh command that runs ``argv`` on the login node, one connection reused for a minute.

    The remote shell joins ssh's arguments into a command line, so each word is quoted.

    >>> ssh_argv(parse_remote("u@h:22"), ("cat", "a b"))[-2:]
    ('--', "cat 'a b'")
    """
    control = os.path.join(os.path.expanduser("~"), ".ssh", "orch-%C")
    words = (
        "ssh",
        "-o", "BatchMode=yes",
        "-o", "ConnectTimeout=15",
        "-o", "ControlMaster=auto",
        "-o", "ControlPath=%s" % control,
        "-o", "ControlPersist=60",
    )
    return words + connection_options(remote, orch_ssh_config()) + (remote.destination, "--", " ".join(literal(w) for w in argv))


def replace_process(argv):
    """Become ``argv`` (``os.execvp``): what ``orch tunnel --exec`` does with its ssh command. Never returns."""
    os.execvp(argv[0], list(argv))


def run(argv, *, input=None, timeout=60, remote=None):
    """Run ``argv`` (locally, or over ssh) and return what it did; never raises for its exit status.

    ssh's own failure (status 255) raises ``ConnectionError_``; a missing program gives status 127.
    """
    import sh

    if remote is not None:
        # ssh keeps its reusable connection's socket there (ControlPath); a new account may lack it
        os.makedirs(os.path.join(os.path.expanduser("~"), ".ssh"), mode=0o700, exist_ok=True)
    full = ssh_argv(remote, argv) if remote is not None else tuple(argv)
    try:
        command = sh.Command(full[0])
    except sh.CommandNotFound:
        return Completed(argv=full, exit_code=127, stderr="%s: command not found" % full[0])
    try:
        done = command(*full[1:], _in=input, _ok_code=range(256), _return_cmd=True, _timeout=timeout)
    except sh.TimeoutException:
        return Completed(argv=full, exit_code=124, stderr="%s timed out after %s s" % (full[0], timeout))
    result = Completed(
        argv=full,
        exit_code=done.exit_code,
        stdout=done.stdout.decode("utf-8", "replace"),
        stderr=done.stderr.decode("utf-8", "replace"),
    )
    if remote is not None and result.exit_code == 255:
        raise ConnectionError_("ssh %s: %s" % (remote.destination, _first_line(result.stderr) or "connection failed"))
    return result


def _first_line(text):
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


JOB_ID = re.compile(r"^(\d+)(?:;\S+)?$")


def parse_job_id(stdout):
    """The job id from ``sbatch --parsable`` (``12`` or ``12;cluster``), or None.

    >>> parse_job_id("4242;meluxina\\n")
    '4242'
    """
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    match = JOB_ID.match(lines[-1]) if lines else None
    return match.group(1) if match else None


def submit(script, *, options=(), remote=None, runner=run):
    """Submit ``script`` (on sbatch's stdin, so nothing is uploaded); return the SLURM job id."""
    result = runner(("sbatch", "--parsable") + tuple(options), input=script, remote=remote)
    job_id = parse_job_id(result.stdout) if result.exit_code == 0 else None
    if job_id is None:
        words = _first_line(result.stderr) or _first_line(result.stdout) or "exit status %d" % result.exit_code
        raise SubmissionError("sbatch: %s" % words)
    return job_id


def queue(*, remote=None, runner=run):
    """``{job id: SlurmJob}`` for this user's jobs that SLURM still knows (finished ones too)."""
    result = runner(("squeue", "--me", "--noheader", "--states=all", "--format=" + SQUEUE_FORMAT), remote=remote)
    if result.exit_code != 0:
        raise SchedulerError("squeue: %s" % (_first_line(result.stderr) or "exit status %d" % result.exit_code))
    return parse_squeue(result.stdout)


def accounted_job(job_id, *, remote=None, runner=run):
    """``SlurmJob`` from ``sacct`` where accounting exists, else from ``scontrol``; None when neither knows it.

    Asked only for jobs that squeue no longer lists: finished ones, past ``MinJobAge``.
    """
    result = runner(
        ("sacct", "--noheader", "--parsable2", "--allocations", "--jobs", str(job_id),
         "--format=JobID,State,NodeList,Elapsed,ExitCode"),
        remote=remote,
    )
    if result.exit_code == 0:
        job = parse_sacct(result.stdout, str(job_id))
        if job is not None:
            return job
    # no accounting ("Slurm accounting storage is disabled"): the controller may still know it
    return show_job(job_id, remote=remote, runner=runner)


def show_job(job_id, *, remote=None, runner=run):
    """``SlurmJob`` from ``scontrol show job``, or None once SLURM has forgotten the job."""
    result = runner(("scontrol", "show", "job", "-o", str(job_id)), remote=remote)
    return parse_scontrol(result.stdout) if result.exit_code == 0 else None


def cancel(job_ids, *, remote=None, runner=run):
    """scancel the jobs; SLURM's complaint (if any) is raised."""
    if not job_ids:
        return
    result = runner(("scancel",) + tuple(str(j) for j in job_ids), remote=remote)
    if result.exit_code != 0:
        raise SchedulerError("scancel: %s" % (_first_line(result.stderr) or "exit status %d" % result.exit_code))


def read_text(path, *, remote=None, runner=run):
    """The file's text, or None when it does not exist (locally, or on the login node)."""
    if remote is None:
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                return handle.read()
        except (FileNotFoundError, NotADirectoryError):
            return None
    result = runner(("cat", path), remote=remote)
    return result.stdout if result.exit_code == 0 else None


def list_dir(path, *, remote=None, runner=run):
    """The names in a directory, sorted ([] when it does not exist), locally or on the login node."""
    if remote is None:
        try:
            return sorted(os.listdir(path))
        except (FileNotFoundError, NotADirectoryError):
            return []
    result = runner(("ls", "-1", path), remote=remote)
    return sorted(result.stdout.split()) if result.exit_code == 0 else []


def make_dirs(path, *, remote=None, runner=run):
    """mkdir -p, locally or on the login node."""
    if remote is None:
        os.makedirs(path, exist_ok=True)
        return
    result = runner(("mkdir", "-p", path), remote=remote)
    if result.exit_code != 0:
        raise SubmissionError("mkdir %s: %s" % (path, _first_line(result.stderr)))


def remote_home(remote, *, runner=run):
    """The login node's home directory (run directories live under it)."""
    result = runner(("sh", "-c", 'printf %s "$HOME"'), remote=remote)
    home = result.stdout.strip()
    if result.exit_code != 0 or not home.startswith("/"):
        raise ConnectionError_("ssh %s: cannot read the home directory" % remote.destination)
    return home
