"""Rules across a recipe's fields, which the field specs alone cannot check, and which values orch takes literally.

Every rule returns ``(line, field, message)`` problems. The rules on names read the
recipe's nodes alone, so that they run whatever else is wrong with the file; the
rules on values read the values read so far: ``orch.recipe`` reports them all together.
"""
import re

from orch import schema
from orch.kinds.health import endpoint_problem

__all__ = ("structure_problems", "value_problems", "literal_names", "SECRET_ENV")

# variables the job itself, SLURM, Apptainer or bash own: a recipe may not set them
RESERVED_ENV = (
    (re.compile(r"ORCH_\w*"), "orch's own variable"),
    (re.compile(r"SLURM_\w*"), "SLURM's own variable"),
    (re.compile(r"(?:APPTAINER|SINGULARITY)\w*"), "Apptainer's own setting (orch hands the recipe's variables to the container itself)"),
    (re.compile(r"IFS|BASH\w*|SHELLOPTS|EUID|UID|PPID|_"), "bash's own variable"),
)
# what orch sets from a client's target, for the client's programs
TARGET_ENV = ("TARGET_HOST", "TARGET_PORT", "TARGET_URL", "TARGET_SCHEME", "TARGET_SERVICE_HOST")
# names that say their value is a secret: taken literally, a "$" in them stays a "$"
SECRET_ENV = re.compile(
    r"(?:^|_)(?:PASSWORD|PASSWD|PASS|PASSPHRASE|SECRET|TOKEN|CREDENTIALS?)(?:_|$)|(?:^|_)(?:AUTH|API_?KEY|ACCESS_KEY)$"
)


def literal_names(kind, parameters):
    """The environment names whose values orch takes literally for this kind: the ones it reads as its own
    fields (``REDIS_PASSWORD``) or its load generator reads (``MYSQL_PASSWORD``); any secret-like name is too."""
    return set(kind.env_fields) | set(kind.reads_env(parameters or {}))


def _reserved(role, name):
    for pattern, why in RESERVED_ENV:
        if pattern.fullmatch(name):
            return why
    if role == "client" and name in TARGET_ENV:
        return "orch sets it from the client's target"
    return None


def _environment(role, node, path):
    env = schema.child(node, "environment")
    problems = []
    for name in schema.keys_of(env):
        why = schema.EnvMapping.NAME.fullmatch(name) and _reserved(role, name)
        if why:
            problems.append((schema.key_line(env, name), "%s.environment.%s" % (path, name), "is reserved: %s" % why))
    return problems


def _client_fields(node, path):
    problems = []
    given = set(schema.keys_of(node))
    at = lambda key: schema.key_line(node, key)  # noqa: E731
    if "args" in given and "command" not in given:
        problems.append((at("args"), path + ".args", "a client's args go with its own command: set command too"))
    if "ports" in given:
        problems.append((at("ports"), path + ".ports", "a client listens on no port (its target's port comes from the target)"))
    if "health_check" in given:
        problems.append((at("health_check"), path + ".health_check",
                         "a client is not probed: how its target is probed is target_service.health_check_endpoint"))
    return problems


def _service_fields(kind, node, path):
    problems = []
    ports = schema.child(node, "ports")
    if ports is not None and ports.is_sequence() and len(ports) > 1:
        problems.append((schema.line_of(ports[1]), path + ".ports[1]",
                         "a service listens on one port, ports[0] (the one it publishes): give one"))
    if "init_script" in schema.keys_of(node) and kind is not None and not kind.init_script:
        problems.append((schema.key_line(node, "init_script"), path + ".init_script",
                         "%s runs no init_script (SQL for mysql and postgres): run commands with setup_script" % kind.name))
    return problems


def structure_problems(role, kind, node, path):
    """Rules on which fields go together: reserved variable names, client-only and service-only fields."""
    problems = _environment(role, node, path)
    if role == "client":
        problems += _client_fields(node, path)
    else:
        problems += _service_fields(kind, node, path)
    return problems


def _script_rule(kind, block, node, path):
    """The seed's ``script:`` names its own benchmark script for the kind, which orch's load generator replaces;
    a script of the user's own cannot run that way (``command``/``args`` run it)."""
    name = block.get("script", {}).get("name")
    ours = (kind.name + ".py", kind.name.replace("_benchmark", "_parametric_benchmark") + ".py")
    if not name or name in ours:
        return []
    line = schema.line_of(schema.child(schema.child(node, "script"), "name"))
    return [(line, path + ".script.name", "%r is not the older tool's script for %s (%s), which orch's own load "
             "generator replaces: run a script of your own with command: and args:" % (name, kind.name, ", ".join(ours)))]


def _endpoint_rule(kind, block, node, path):
    """A service's ``health_check.endpoint`` against the rule every kind shares (``orch.kinds.health``)."""
    endpoint = block.get("health_check", {}).get("endpoint")
    ports = block.get("ports") or ()
    why = endpoint and endpoint_problem(kind, endpoint, ports[0] if ports else kind.port)
    return [(schema.key_line(schema.child(node, "health_check"), "endpoint"), path + ".health_check.endpoint", why)] if why else []


def _args_problems(kind, block, settings, node, path):
    """With ``args``, orch appends the flags of its own fields to the kind's program: an arg that sets the same
    thing, or a ``command`` that is another program (which gets its args as they are), is a problem."""
    from orch.kinds.common import sets_option

    args = block.get("args")
    if args is None:
        return []
    command = block.get("command")
    own = not command or command.rsplit("/", 1)[-1] in kind.programs
    problems = []
    for field, options in kind.arg_options.items():
        if field not in settings:
            continue
        given = next((option for option in options if sets_option(args, option)), None)
        if not own:
            problems.append((schema.key_line(node, "args"), path + ".args",
                             "run as given by %r, not %s: %s would not take effect (give it in the args, or drop %s)"
                             % (command, kind.programs[0], field, field)))
        elif given:
            problems.append((schema.key_line(node, "args"), path + ".args",
                             "%r sets what %s sets: give one of them" % (given, field)))
    return problems


def value_problems(role, kind, block, settings, node, path):
    """Rules on values: a client's seed script; a service's health_check.endpoint, and its args against its own fields."""
    if role == "client":
        return _script_rule(kind, block, node, path)
    return _endpoint_rule(kind, block, node, path) + _args_problems(kind, block, settings, node, path)
