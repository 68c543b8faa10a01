"""What every section module shares: the script's assembly, section titles, and background processes."""
from toolz import concat

from orch.quoting import shell_line

__all__ = ("render", "banner", "background")


def render(job, sections):
    """Return the script: every section's lines, in order, one per line.

    >>> render(None, (lambda j: ("#!/bin/bash",), lambda j: ("true",)))
    '#!/bin/bash\\ntrue\\n'
    """
    return "\n".join(concat(section(job) for section in sections)) + "\n"


def banner(title):
    return ("", "# --- %s" % title)


def background(words, pid_var):
    # setsid gives the child its own process group, so teardown reaches its children too
    return (
        shell_line("setsid", *words) + " &",
        "%s=$!" % pid_var,
        'orch_pids+=("$%s")' % pid_var,
    )
