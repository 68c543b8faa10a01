"""Rules across a recipe's fields, which the field specs alone cannot check, and which values orch takes literally.

Every rule returns ``(line, field, message)`` problems and reads the recipe's nodes
as well as the values read so far, so that it runs whatever else is wrong with the
file: ``orch.recipe`` reports them all together.
"""
import re

from orch import schema
from orch.sweep import fixed, swept

__all__ = ("child", "keys_of", "structure_problems", "value_problems", "literal_names", "SECRET_ENV")

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


def child(node, key):
    """The value node of ``key`` in the mapping ``node``, or None."""
    if node is None or not node.is_mapping():
        return None
    for child_key, value in node.items():
        if child_key.data == key:
            return value
    return None


def keys_of(node):
    """The keys of the mapping ``node`` (none for anything else)."""
    return [key.data for key, _ in node.items()] if node is not None and node.is_mapping() else []


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
    env = child(node, "environment")
    problems = []
    for name in keys_of(env):
        why = schema.EnvMapping.NAME.fullmatch(name) and _reserved(role, name)
        if why:
            problems.append((schema.key_line(env, name), "%s.environment.%s" % (path, name), "is reserved: %s" % why))
    return problems


def _client_fields(kind, kinds, node, path):
    problems = []
    given = set(keys_of(node))
    at = lambda key: schema.key_line(node, key)  # noqa: E731
    if "args" in given and "command" not in given:
        problems.append((at("args"), path + ".args", "a client's args go with its own command: set command too"))
    if "ports" in given:
        problems.append((at("ports"), path + ".ports", "a client listens on no port (its target's port comes from the target)"))
    if "health_check" in given:
        problems.append((at("health_check"), path + ".health_check",
                         "a client is not probed: how its target is probed is target_service.health_check_endpoint"))
    if "script" in given:
        if "command" in given:
            problems.append((at("script"), path + ".script", "the recipe's command runs, not a script: give one of them"))
        elif kind is not None:
            problems.extend(_script_name(kind, kinds, child(node, "script"), path + ".script"))
    if "output" in given and "command" in given:
        problems.append((at("output"), path + ".output",
                         "orch copies its load generator's results; a command of your own writes its own ($ORCH_RESULT)"))
    output_file = child(child(node, "parameters"), "output_file")
    if child(child(node, "output"), "file") is not None and output_file is not None:
        problems.append((schema.line_of(output_file), path + ".parameters.output_file", "also given as output.file: give one"))
    return problems


def _script_name(kind, kinds, script, path):
    """The seed's ``script: {name}`` must be this kind's benchmark script, which orch's load generator replaces."""
    from orch.kinds import kind_named

    name_node = child(script, "name")
    if name_node is None or not name_node.is_scalar():
        return []
    name = name_node.data.rsplit("/", 1)[-1]
    stem = name[:-3] if name.endswith(".py") else None
    if stem and kind_named(stem, kinds) is kind:
        return []
    seed = "%s.py" % kind.name
    if kind.name.endswith("_benchmark"):
        seed += " or %s_parametric_benchmark.py" % kind.name[: -len("_benchmark")]
    return [(schema.line_of(name_node), path + ".name",
             "%r is not %s's script: orch's own load generator runs in place of %s; "
             "run a program of your own with command and args" % (name_node.data, kind.name, seed))]


def _service_fields(kind, node, path):
    problems = []
    ports = child(node, "ports")
    if ports is not None and ports.is_sequence() and len(ports) > 1:
        problems.append((schema.line_of(ports[1]), path + ".ports[1]",
                         "a service listens on one port, ports[0] (the one it publishes): give one"))
    if "init_script" in keys_of(node) and kind is not None and not kind.init_script:
        problems.append((schema.key_line(node, "init_script"), path + ".init_script",
                         "%s runs no init_script (SQL for mysql and postgres): run commands with setup_script" % kind.name))
    return problems


def structure_problems(role, kind, kinds, node, path):
    """Rules on which fields go together: reserved variable names, client-only and service-only fields."""
    problems = _environment(role, node, path)
    if role == "client":
        problems += _client_fields(kind, kinds, node, path)
    else:
        problems += _service_fields(kind, node, path)
    return problems


def _given(kind, node, path, name):
    """``(line, field)`` where the recipe gives the parameter ``name`` (under any of its names)."""
    for block_name in ("parameters", "sweep"):
        where = child(node, block_name)
        for key in keys_of(where):
            if kind.aliases.get(key, key) == name:
                return schema.key_line(where, key), "%s.%s.%s" % (path, block_name, key)
    return schema.line_of(node), path


def _sweep_problems(kind, block, parameters, node, path):
    if "command" in block:
        return []  # a program of the recipe's own reads every value (ORCH_PARAM_*)
    problems = []
    mode = fixed(parameters).get("parametric_mode")
    axes = swept(parameters)
    if mode is True and not axes:
        problems.append(_given(kind, node, path, "parametric_mode") + ("true, but no parameter has several values: nothing to sweep",))
    if mode is False and axes:
        problems.append(_given(kind, node, path, "parametric_mode") + ("false, but %s has several values (a sweep)" % axes[0][0],))
    for group in kind.exclusive:
        given = [name for name in group if name in parameters]
        if len(given) > 1:
            problems.append(_given(kind, node, path, given[-1]) + ("also given as %s: give one of them" % given[0],))
    for name, _ in axes:
        if kind.passed is not None and name not in kind.passed:
            problems.append(_given(kind, node, path, name)
                            + ("is not passed to %s's load generator: its values would make identical tasks" % kind.name,))
    return problems


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


def value_problems(role, kind, block, settings, parameters, node, path):
    """Rules on values: a sweep that sweeps nothing, parametric_mode, args against the kind's own fields."""
    if role == "client":
        return _sweep_problems(kind, block, parameters, node, path)
    return _args_problems(kind, block, settings, node, path)
