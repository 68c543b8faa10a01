"""Files orch reads and writes: locally, or on a login node (``remote``) through ``process.run``.

Importing it costs nothing but the standard library: the load generators on
compute nodes write their results with ``write_atomically``, under whatever
Python the node has; what reaches a login node is imported when it is used.
"""
import os

__all__ = ("read_text", "read_from", "list_dir", "make_dirs", "write_atomically")


def _runner(runner):
    if runner is not None:
        return runner
    from orch.effects.process import run

    return run


def read_text(path, *, remote=None, runner=None):
    """The file's text, or None when it does not exist (locally, or on the login node)."""
    if remote is None:
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                return handle.read()
        except (FileNotFoundError, NotADirectoryError):
            return None
    result = _runner(runner)(("cat", path), remote=remote)
    return result.stdout if result.exit_code == 0 else None


def read_from(path, offset=0, *, remote=None, runner=None):
    """The file's text from byte ``offset`` on ('' when it is not there yet): a log being followed."""
    if remote is None:
        try:
            with open(path, "rb") as handle:
                handle.seek(offset)
                return handle.read().decode("utf-8", "replace")
        except (FileNotFoundError, NotADirectoryError):
            return ""
    result = _runner(runner)(("tail", "-c", "+%d" % (offset + 1), path), remote=remote)
    return result.stdout if result.exit_code == 0 else ""


def list_dir(path, *, remote=None, runner=None):
    """The names in a directory, sorted ([] when it does not exist), locally or on the login node."""
    if remote is None:
        try:
            return sorted(os.listdir(path))
        except (FileNotFoundError, NotADirectoryError):
            return []
    result = _runner(runner)(("ls", "-1", path), remote=remote)
    return sorted(result.stdout.split()) if result.exit_code == 0 else []


def make_dirs(path, *, remote=None, runner=None):
    """mkdir -p, locally (OSError when it cannot) or on the login node (``SubmissionError``: the job cannot be submitted there)."""
    if remote is None:
        os.makedirs(path, exist_ok=True)
        return
    result = _runner(runner)(("mkdir", "-p", path), remote=remote)
    if result.exit_code != 0:
        from orch.argv import reason_line
        from orch.errors import SubmissionError

        raise SubmissionError("mkdir %s: %s" % (path, reason_line(result.stderr)))


def write_atomically(path, data, *, mode=None):
    """Write ``data`` (text or bytes) to ``path`` whole or not at all: a temporary file beside it, synced, then renamed.

    + mode: the file's permission bits (default: as the umask makes them)
    """
    tmp = os.path.join(os.path.dirname(os.path.abspath(path)), ".%s.%d.tmp" % (os.path.basename(path), os.getpid()))
    try:
        with open(tmp, "wb" if isinstance(data, bytes) else "w", **({} if isinstance(data, bytes) else {"encoding": "utf-8"})) as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise

