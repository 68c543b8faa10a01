"""Running commands: locally, or on a login node through ssh (one connection reused for a minute)."""
import os

from pyrsistent import PClass, field

from orch.argv import reason_line, ssh_argv
from orch.errors import LoginUnreachable

__all__ = ("Completed", "run", "replace_process", "orch_ssh_config", "control_path")


class Completed(PClass):
    argv = field(type=tuple, mandatory=True)
    exit_code = field(type=int, mandatory=True)
    stdout = field(type=str, initial="")
    stderr = field(type=str, initial="")


def orch_ssh_config(environ=None):
    """The ssh config file of orch's own (``ORCH_SSH_CONFIG``), or None: then the user's ~/.ssh/config applies as usual."""
    return (os.environ if environ is None else environ).get("ORCH_SSH_CONFIG") or None


def control_path():
    """Where ssh keeps orch's shared connections (``~/.ssh/orch-%C``)."""
    return os.path.join(os.path.expanduser("~"), ".ssh", "orch-%C")


def replace_process(argv):
    """Become ``argv`` (``os.execvp``): what ``orch tunnel --exec`` does with its ssh command. Never returns."""
    os.execvp(argv[0], list(argv))


def run(argv, *, input=None, timeout=60, remote=None, env=None, stream=None):
    """Run ``argv`` (locally, or over ssh) and return what it did; never raises for its exit status.

    + env: the environment the command gets (default: orch's own)
    + stream: a file its output goes to as it comes (a terminal), instead of being kept
    ssh's own failure (status 255) raises ``LoginUnreachable``; a missing program gives status 127.
    """
    import sh

    if remote is not None:
        # ssh keeps its reusable connection's socket there (ControlPath); a new account may lack it
        os.makedirs(os.path.join(os.path.expanduser("~"), ".ssh"), mode=0o700, exist_ok=True)
        full = ssh_argv(remote, argv, control_path=control_path(), ssh_config=orch_ssh_config())
    else:
        full = tuple(argv)
    try:
        command = sh.Command(full[0])
    except sh.CommandNotFound:
        return Completed(argv=full, exit_code=127, stderr="%s: command not found" % full[0])
    options = {"_in": input, "_ok_code": range(256), "_return_cmd": True, "_timeout": timeout}
    if env is not None:
        options["_env"] = dict(env)
    if stream is not None:
        # returns None: sh stops calling back once a callback returns something true
        def forward(chunk):
            stream.write(chunk)
            stream.flush()

        options["_out"] = options["_err"] = forward
    try:
        done = command(*full[1:], **options)
    except sh.TimeoutException:
        return Completed(argv=full, exit_code=124, stderr="%s timed out after %s s" % (full[0], timeout))
    result = Completed(
        argv=full,
        exit_code=done.exit_code,
        stdout=(done.stdout or b"").decode("utf-8", "replace"),
        stderr=(done.stderr or b"").decode("utf-8", "replace"),
    )
    if remote is not None and result.exit_code == 255:
        raise LoginUnreachable("ssh %s: %s" % (remote.destination, reason_line(result.stderr) or "connection failed"))
    return result
