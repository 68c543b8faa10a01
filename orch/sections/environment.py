"""The job's environment: the kind's defaults and the recipe's variables, for what runs for the recipe only.

They never become variables of the job's own shell, so a recipe that sets ``HOME``,
``PATH`` or ``LD_LIBRARY_PATH`` for its program cannot move the image orch pulls,
hide ``apptainer``, ``curl`` or ``timeout`` from orch, or reach orch's sidecars. The
job's shell keeps each value under a name of orch's own (``ORCH_ENV_<NAME>``,
exported but read by nobody); ``in_environment`` runs a command through a small
``bash -c`` that turns them back into ``NAME`` (host runtime; Charliecloud, whose ``ch-run``
passes them on) or ``APPTAINERENV_NAME`` (Apptainer: the container's ``NAME``), and nothing
else changes (``Runtime.environment``). No value is ever
on a command line, so a password stays out of ``ps``.

``$NAME`` in a recipe's environment values, ``command`` and ``args`` means the
recipe's own variable when the recipe sets it (a value: above it), else the node's.
The substitution is made here, part by part, so a literal ``$`` (a password) stays one.
"""
from toolz import curry

from orch.quoting import BARE, Literal, Raw, parts, parts_word, substituted
from orch.runtimes import runtime_of
from orch.runtimes.host import PLAIN_ENVIRONMENT
from orch.sections.lines import banner

__all__ = ("environment", "environment_with", "in_environment", "with_environment", "on_node", "recipe_word", "recipe_pairs",
           "ENV_PREFIX")

ENV_PREFIX = "ORCH_ENV_"


def recipe_pairs(job):
    """``(name, parts)`` of the recipe's variables, in order, each value's ``$NAME`` of a variable above it replaced."""
    known, pairs = {}, []
    for name, value in job.environment:
        known[name] = substituted(value, known)
        pairs.append((name, known[name]))
    return tuple(pairs)


def recipe_word(job, value):
    """``value`` (the recipe's ``command`` or one of its ``args``) as one shell word: ``$NAME`` of a recipe
    variable replaced by its value, any other ``$NAME`` the node's; a ``Raw`` word of orch's as it is."""
    return parts_word(substituted(value, dict(recipe_pairs(job))))


def _quoted(word):
    # NAME=admin reads like a command to shellcheck (SC2209): a bare word is quoted too
    return "'%s'" % word if BARE.match(word) else word


def environment(job, extra=()):
    """The kind's default variables (``extra``) and the recipe's, set for what ``in_environment`` runs.

    A recipe variable replaces a default of the same name.
    """
    recipe = recipe_pairs(job)
    mine = {name for name, _ in recipe}
    kept = tuple((name, value) for name, value in extra if name not in mine)
    defaults = tuple((name, parts(value)) for name, value in kept)
    literal = {name for name, value in kept + tuple(job.environment) if isinstance(value, Literal)}
    pairs = defaults + recipe
    if not pairs:
        return ()  # the preamble's ORCH_IN_ENV runs the command as it is
    lines = list(banner("environment: for the recipe's programs, not for orch's own commands"))
    lines.append('unset "${!ORCH_ENV_@}" ORCH_PLAIN_ENV')  # none from the environment sbatch passed on
    lines.extend("export %s%s=%s" % (ENV_PREFIX, name, _quoted(parts_word(found))) for name, found in pairs)
    plain = [name for name, _ in pairs if name in literal]
    if job.runtime == "apptainer" and plain:
        lines.append("export ORCH_PLAIN_ENV='%s'" % " ".join(plain))
    # what `bash -c` runs before the command: the job's values handed to it the runtime's way
    lines.append("ORCH_IN_ENV='%s'" % runtime_of(job).environment)
    return tuple(lines)


@curry
def environment_with(defaults, job):
    """``environment`` with the kind's defaults: ``defaults(job)`` gives (name, value) pairs."""
    return environment(job, tuple(defaults(job)))


def with_environment(words):
    """``words`` run on the node as they are, with the job's environment (the ``environment`` section sets it).

    Under Apptainer that is ``APPTAINERENV_*`` (passed on to any ``apptainer exec`` they start) and the
    variables orch takes literally, under their own names.
    """
    return ("bash", "-c", Raw('"$ORCH_IN_ENV"'), "orch-env") + tuple(words)


def in_environment(job, words):
    """``words`` run in the job's runtime (its image) with the job's environment."""
    return with_environment(runtime_of(job).wrap(job, words))


def on_node(words):
    """``words`` run on the node, outside any image, with the job's environment as plain variables, whatever the
    runtime (the recipe's ``setup_script``)."""
    return ("bash", "-c", Literal(PLAIN_ENVIRONMENT), "orch-env") + tuple(words)
