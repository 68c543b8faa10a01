"""Readiness probes: words that succeed once a service answers (run on the node, bounded by the caller)."""
from orch.quoting import Literal

__all__ = ("http_probe", "tcp_probe")


def http_probe(*urls, seconds=5):
    """Words that succeed when any of ``urls`` answers with a 2xx status within ``seconds``."""
    if len(urls) == 1:
        return ("curl", "-fsS", "-o", "/dev/null", "--max-time", str(seconds), urls[0])
    script = Literal('for u in "$@"; do curl -fsS -o /dev/null --max-time %d "$u" && exit 0; done; exit 1' % seconds)
    return ("bash", "-c", script, "orch-probe") + tuple(urls)


def tcp_probe(host, port, seconds=None):
    """Words that succeed when a TCP connection to host:port opens, within ``seconds`` when given.

    Without ``seconds`` the caller bounds the time (``health`` runs every probe under ``timeout``).

    >>> tcp_probe("h", "1", 5)[:3]
    ('timeout', '5', 'bash')
    """
    words = ("bash", "-c", Literal('exec 3<>"/dev/tcp/$1/$2"'), "orch-probe", host, port)
    return ("timeout", str(seconds)) + words if seconds is not None else words
