"""Readiness probes: words that succeed once a service answers (run on the node, bounded by the caller).

A probe is a tuple of words, or ``any_of(...)`` several such tuples: ready when
any one passes. ``probe_function`` bounds each check on its own, so a check that
hangs never eats the time of the next one.
"""
from orch.quoting import Literal, shell_line

__all__ = ("http_probe", "tcp_probe", "any_of", "checks_of", "probe_function")


class AnyOf(tuple):
    """Several checks (each a tuple of words), tried in turn: the first that passes ends the probe."""

    __slots__ = ()


def any_of(*checks):
    """A probe of several checks, or the one check itself when there is one."""
    return checks[0] if len(checks) == 1 else AnyOf(checks)


def checks_of(probe):
    """The checks of a probe, each a tuple of words.

    >>> checks_of(("true",)), checks_of(any_of(("false",), ("true",)))
    ((('true',),), (('false',), ('true',)))
    """
    return tuple(probe) if isinstance(probe, AnyOf) else (tuple(probe),)


def probe_function(probe, seconds):
    """The shell function ``orch_probe``: each check of ``probe`` in turn, each under ``timeout seconds``.

    >>> probe_function(any_of(("a",), ("b",)), 6)
    'orch_probe() { timeout 6 a >/dev/null 2>&1 || timeout 6 b >/dev/null 2>&1; }'
    """
    checks = " || ".join("%s >/dev/null 2>&1" % shell_line("timeout", str(seconds), *words) for words in checks_of(probe))
    return "orch_probe() { %s; }" % checks


def http_probe(*urls, seconds=5):
    """A probe that passes when any of ``urls`` answers with a 2xx status; each URL gets ``seconds``."""
    return any_of(*(("curl", "-fsS", "-o", "/dev/null", "--max-time", str(seconds), url) for url in urls))


def tcp_probe(host, port, seconds=None):
    """Words that succeed when a TCP connection to host:port opens, within ``seconds`` when given.

    Without ``seconds`` the caller bounds the time (``health`` runs every probe under ``timeout``).

    >>> tcp_probe("h", "1", 5)[:3]
    ('timeout', '5', 'bash')
    """
    words = ("bash", "-c", Literal('exec 3<>"/dev/tcp/$1/$2"'), "orch-probe", host, port)
    return ("timeout", str(seconds)) + words if seconds is not None else words
