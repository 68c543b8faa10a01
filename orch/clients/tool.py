"""Running a native load tool (redis-benchmark, sysbench) inside a client: bounded and stoppable.

The client's signal handler calls ``wake()``; the wait below sleeps on one event
(set by the tool's exit or by a signal), so nothing polls the cores that the
tool and the service share.
"""
import re
import signal
import subprocess
import tempfile
import threading
import time

__all__ = ("run_tool", "stop_on_signals", "tool_version", "wake", "split_wrap", "tool_missing")

_WAKE = threading.Event()


def wake():
    """Interrupt ``run_tool``'s wait (from a signal handler): it then checks why it should stop."""
    _WAKE.set()


def stop_on_signals():
    """Handle TERM and INT by asking ``run_tool`` to stop: returns the list the signals are put in."""
    received = []

    def on_signal(signum, frame):
        received.append(signum)
        wake()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return received


def run_tool(words, deadline, stop_flag, *, expired="duration", fatal=None):
    """Run ``words`` until they exit, ``stop_flag`` fills (a signal), ``deadline`` passes or ``fatal(stderr)`` says so.

    Returns ``(returncode, stdout, stderr, why)``: ``why`` is None for a natural
    end, else "signal", ``expired`` (the deadline) or "error". A stopped tool
    gets TERM, then KILL after 5 s.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        _WAKE.clear()
        proc = subprocess.Popen(words, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        threading.Thread(target=lambda: (proc.wait(), _WAKE.set()), daemon=True).start()
        why = None
        while proc.poll() is None:
            _WAKE.wait(max(0.0, min(0.25, deadline - time.monotonic())))
            if proc.poll() is not None:
                break
            _WAKE.clear()  # a signal that stops nothing here (cleanup) must not turn this into a busy loop
            if stop_flag:
                why = "signal"
            elif time.monotonic() >= deadline:
                why = expired
            elif fatal is not None:
                err.seek(0)
                if fatal(err.read().decode(errors="replace")):
                    why = "error"
            if why:
                for sig in (signal.SIGTERM, signal.SIGKILL):
                    try:
                        proc.send_signal(sig)
                        proc.wait(timeout=5)
                        break
                    except subprocess.TimeoutExpired:
                        continue
                break
        if stop_flag and why is None and proc.returncode != 0:
            why = "signal"
        out.seek(0)
        err.seek(0)
        return proc.returncode, out.read().decode(errors="replace"), err.read().decode(errors="replace"), why


def split_wrap(argv):
    """``(arguments, wrap)``: the load generator's own arguments, and the words after ``--`` that run its
    native tool inside the client's image (``apptainer exec ... IMAGE``); no ``--``: the tool from PATH.

    >>> split_wrap(["--host", "h", "--", "apptainer", "exec", "img.sif"])
    (['--host', 'h'], ('apptainer', 'exec', 'img.sif'))
    """
    argv = list(argv)
    if "--" not in argv:
        return argv, ()
    cut = argv.index("--")
    return argv[:cut], tuple(argv[cut + 1:])


def tool_missing(program, wrap=()):
    """True when ``program`` is surely not there: not on PATH, and not run in an image (where PATH is the image's)."""
    import shutil

    return not wrap and shutil.which(program) is None


def tool_version(program, wrap=()):
    """The version ``program --version`` prints (its first dotted number), or None; ``wrap``: in the client's image."""
    try:
        out = subprocess.run(list(wrap) + [program, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    found = re.search(r"(\d+\.\d+(?:\.\d+)?)", out)
    return found.group(1) if found else (out.strip() or None)
