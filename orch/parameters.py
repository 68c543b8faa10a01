"""A client's parameters: the seed's names for them, sweeps, and the kind's rules across them.

``orch.recipe`` reads a client block's ``parameters:`` and ``sweep:`` with these; an
experiment's ``sweep:`` (``orch.experiments``) goes through ``read_sweep`` too.
"""
from orch import schema
from orch.kinds.client import COMMON_PARAMETERS
from orch.sweep import Sweep, swept

__all__ = ("parameters_spec", "sweep_spec", "read_sweep", "given_twice", "client_parameters")


def parameters_spec(kind):
    """The ``parameters:`` block of a client kind: its parameters, under orch's names and the seed's."""
    fields = dict(kind.fields)
    for alias, target in kind.aliases.items():
        fields[alias] = kind.fields[target]
    return schema.Mapping(fields)


class _NotSwept:
    """A parameter that says how orch runs the client (``wait_for_service``), not what load it makes: never an axis."""

    def read(self, node, path):
        return None, [(schema.line_of(node), path, "sets how orch runs the client, not its load, so it is no sweep axis: "
                                                   "give it under parameters:")]


def sweep_spec(kind):
    """The ``sweep:`` block: the same parameters, but not those that say how orch runs the client."""
    fields = dict(parameters_spec(kind).fields)
    fields.update((name, _NotSwept()) for name in COMMON_PARAMETERS)
    return schema.Mapping(fields)


def read_sweep(kind, node, path):
    """``({parameter: Sweep}, problems)`` for a ``sweep:`` mapping node, checked against a client kind's parameters.

    Every list is swept (text lists included); a bare value is a sweep of one.
    """
    values, problems = sweep_spec(kind).read(node, path)
    problems = problems + given_twice(kind, node, path)
    if problems:
        return {}, problems
    return {name: _as_sweep(value) for name, value in _unaliased(kind, values).items()}, problems


def _as_sweep(values):
    return values if isinstance(values, Sweep) else Sweep(values if isinstance(values, tuple) else (values,))


def _unaliased(kind, parameters):
    """Seed parameter names mapped onto orch's."""
    return {kind.aliases.get(name, name): value for name, value in parameters.items()}


def given_twice(kind, node, path):
    """A parameter given under two of its names (``clients`` and ``client_counts``), read from the names alone,
    so that it is reported whatever is wrong with the values."""
    problems, given_as = [], {}
    for name in schema.keys_of(node):
        if name not in kind.fields and name not in kind.aliases:
            continue  # an unknown field: the schema says so
        canonical = kind.aliases.get(name, name)
        if canonical in given_as:
            problems.append((schema.key_line(node, name), "%s.%s" % (path, name), "same parameter as %s (given twice)" % given_as[canonical]))
        else:
            given_as[canonical] = name
    return problems


def _in_both(kind, node, path):
    """A parameter given in ``parameters`` and in ``sweep``, read from the names alone."""
    fixed_names = {kind.aliases.get(name, name) for name in schema.keys_of(schema.child(node, "parameters"))}
    sweep = schema.child(node, "sweep")
    return [(schema.key_line(sweep, name), "%s.sweep.%s" % (path, name), "also set in parameters: give it in one place")
            for name in schema.keys_of(sweep) if kind.aliases.get(name, name) in fixed_names]


def _mode_rule(parameters):
    """The seed's ``parametric_mode`` says whether the run is a sweep: it must agree with the parameters."""
    mode = parameters.get("parametric_mode")
    axes = [name for name, _ in swept(parameters)]
    if mode is True and not axes:
        return [("parametric_mode", "true, but no parameter has several values: there is nothing to sweep")]
    if mode is False and axes:
        return [("parametric_mode", "false, but %s %s several values: that is a sweep"
                 % (", ".join(axes), "has" if len(axes) == 1 else "have"))]
    return []


def _passed_rule(kind, parameters):
    """A swept parameter that orch's load generator never gets would make tasks that differ in nothing."""
    if kind.passed is None:
        return []
    return [(name, "is not passed to %s's load generator: its values would make identical tasks" % kind.name)
            for name, _ in swept(parameters) if name not in kind.passed]


def _checked(kind, parameters, node, path, own_command):
    """Rules across parameters (the kind's, parametric_mode's, and that a swept one is passed on), each problem
    on the line where the parameter (or its seed alias) is given. A recipe's own command reads every value
    (``ORCH_PARAM_*``): every swept parameter is passed to it."""
    rules = _mode_rule(parameters) + (kind.check(parameters) if kind.check else [])
    rules += [] if own_command else _passed_rule(kind, parameters)
    broken = []
    for name, message in rules:
        where, line = path + ".parameters." + name, schema.line_of(node)
        for block in ("parameters", "sweep"):
            mapping = schema.child(node, block)
            given = [key for key in schema.keys_of(mapping) if kind.aliases.get(key, key) == name]
            if given:
                where, line = "%s.%s.%s" % (path, block, given[0]), schema.key_line(mapping, given[0])
                break
        broken.append((line, where, message))
    return broken


def client_parameters(kind, block, node, path):
    """``({parameter: value}, problems)``: a client block's ``parameters:`` and ``sweep:`` under orch's names, merged.

    Every list in ``sweep:`` is swept, text lists (tests, workload) included; a parameter may be in one of the two.
    Names are checked from the recipe's keys, so a parameter given twice is reported with whatever is wrong with its values.
    """
    problems = given_twice(kind, schema.child(node, "parameters"), path + ".parameters")
    problems += given_twice(kind, schema.child(node, "sweep"), path + ".sweep")
    problems += _in_both(kind, node, path)
    parameters = _unaliased(kind, block.get("parameters", {}))
    parameters.update((name, _as_sweep(values)) for name, values in _unaliased(kind, block.get("sweep", {})).items())
    problems += _checked(kind, parameters, node, path, "command" in block)
    return parameters, problems
