"""Small helpers the kinds share."""
from orch.quoting import Raw, shell_line
from orch.sections.environment import recipe_word

__all__ = ("setting", "command_or", "command_with", "runs_own_program", "sets_option", "local_url", "probe_http")


def setting(job, name, default=None):
    """A kind field's value, else ``default``.

    ``orch.recipe`` has already filled fields the seed's recipes set through
    environment variables (``REDIS_PERSISTENCE``: see ``Kind.env_fields``).
    """
    return job.settings.get(name, default)


def command_or(job, default_program, default_args):
    """The recipe's ``command``/``args`` when given, else the kind's.

    ``command`` alone replaces the program and keeps orch's arguments;
    ``args`` replace orch's arguments verbatim (what you write is what runs). In the recipe's
    words ``$NAME`` of one of its own variables is that variable's value (``recipe_word``).
    """
    program = recipe_word(job, job.command) if job.command else default_program
    args = tuple(recipe_word(job, a) for a in job.args) if job.args is not None else tuple(default_args)
    return (program,) + args


def sets_option(args, option):
    """True when ``args`` give ``option``.

    ``--opt`` matches ``--opt`` and ``--opt=value``; a short ``-D`` also ``-D/path``; ``-c name``
    (postgres's ``-c name=value``) matches ``-c name=...`` and ``-cname=...``.

    >>> sets_option(["run", "--path=/d"], "--path"), sets_option(["-c", "max_connections=5"], "-c max_connections")
    (True, True)
    >>> sets_option(["--paths"], "--path")
    False
    """
    args = [str(a) for a in args]
    if " " in option:
        flag, name = option.split(" ", 1)
        return any(a == flag and b.startswith(name + "=") for a, b in zip(args, args[1:])) or any(
            a.startswith(flag + name + "=") for a in args)
    if len(option) == 2:
        return any(a.startswith(option) for a in args)
    return any(a == option or a.startswith(option + "=") for a in args)


def runs_own_program(job, programs):
    """True when the job runs the kind's program: no ``command``, or one naming one of ``programs``
    (``redis-server``, ``/opt/redis/bin/redis-server``), whose options orch knows."""
    return not job.command or job.command.rsplit("/", 1)[-1] in programs


def command_with(job, default_program, default_args, appended=(), programs=()):
    """``command_or``, and with the recipe's ``args`` the words of each ``(option, words)`` of ``appended``
    whose option the args do not give: so the kind's own fields (and what orch's setup and checks rely on)
    still take effect. Without ``args`` the kind's own arguments already carry them; a ``command`` that
    is another program than ``default_program`` or ``programs`` (a wrapper, a stand-in) gets its args
    and nothing else.
    """
    words = command_or(job, default_program, default_args)
    if job.args is None or not runs_own_program(job, (default_program,) + tuple(programs)):
        return words
    for option, extra in appended:
        if not sets_option(job.args, option):
            words += tuple(extra)
    return words


def local_url(port, path):
    """A URL of this node's service as a shell word (host chosen at run time)."""
    return Raw('"http://$ORCH_LOCAL:%d"' % port + shell_line(path))


def probe_http(*urls):
    """A probe that passes when any of ``urls`` answers 2xx, each within 5 s (``orch.sections.http_probe``)."""
    from orch.sections import http_probe

    return http_probe(*urls)

