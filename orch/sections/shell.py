"""orch's fixed shell helpers (``helpers.sh``, shipped beside this module), as lines for a script.

The helpers are bash that never varies with the recipe: logging, state markers,
the teardown trap, a client's progress gauges. They live in one shell file so
that shellcheck reads them as shell, not as strings inside Python.
"""
from functools import lru_cache
from importlib import resources

__all__ = ("helper_lines", "helper_text")


@lru_cache(maxsize=None)
def helper_text():
    """The text of ``helpers.sh``."""
    return resources.files("orch.sections").joinpath("helpers.sh").read_text(encoding="utf-8")


@lru_cache(maxsize=None)
def _blocks():
    blocks, name = {}, None
    for line in helper_text().split("\n"):
        if line.startswith("#@ "):
            name = line[3:].strip()
            blocks[name] = []
        elif name is not None:
            blocks[name].append(line)
    for lines in blocks.values():
        while lines and not lines[-1].strip():
            lines.pop()
    return {name: tuple(lines) for name, lines in blocks.items()}


def helper_lines(name):
    """The lines of the helper block ``name``.

    >>> helper_lines("preamble")[0]
    'set -o pipefail'
    """
    return _blocks()[name]
