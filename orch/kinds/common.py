"""Small helpers the kinds share."""
from orch.quoting import Raw, shell_line

__all__ = ("setting", "command_or", "local_url", "probe_http")


def setting(job, name, default=None):
    """A kind field's value, else ``default``.

    ``orch.recipe`` has already filled fields the seed's recipes set through
    environment variables (``REDIS_PERSISTENCE``: see ``Kind.env_fields``).
    """
    return job.settings.get(name, default)


def command_or(job, default_program, default_args):
    """The recipe's ``command``/``args`` when given, else the kind's.

    ``command`` alone replaces the program and keeps orch's arguments;
    ``args`` replace orch's arguments verbatim (what you write is what runs).
    """
    program = job.command or default_program
    args = tuple(job.args) if job.args is not None else tuple(default_args)
    return (program,) + args


def local_url(port, path):
    """A URL of this node's service as a shell word (host chosen at run time)."""
    return Raw('"http://$ORCH_LOCAL:%d"' % port + shell_line(path))


def probe_http(*urls):
    """A probe that passes when any of ``urls`` answers 2xx, each within 5 s (``orch.sections.http_probe``)."""
    from orch.sections import http_probe

    return http_probe(*urls)

