"""A client's parameters: the seed's names for them, sweeps, and the kind's rules across them.

``orch.recipe`` reads a client block's ``parameters:`` and ``sweep:`` with these; an
experiment's ``sweep:`` (``orch.experiments``) goes through ``read_sweep`` too.
"""
from orch import schema
from orch.kinds.client import COMMON_PARAMETERS
from orch.sweep import Sweep, swept

__all__ = ("parameters_spec", "sweep_spec", "read_sweep", "client_parameters")


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
    if problems:
        return {}, problems
    values, problems = _unalias(kind, values, node, path)
    return {name: _as_sweep(value) for name, value in values.items()}, problems


def _as_sweep(values):
    return values if isinstance(values, Sweep) else Sweep(values if isinstance(values, tuple) else (values,))


def _unalias(kind, parameters, node, path):
    """Seed parameter names mapped onto orch's; a parameter given under two names is a problem."""
    values, problems, given_as = {}, [], {}
    line_of = {key.data: schema.key_line(node, key.data) for key, _ in node.items()} if node is not None else {}
    for name, value in parameters.items():
        canonical = kind.aliases.get(name, name)
        if canonical in given_as:
            problems.append(
                (line_of.get(name, 0), "%s.%s" % (path, name), "same parameter as %s (given twice)" % given_as[canonical])
            )
            continue
        given_as[canonical] = name
        values[canonical] = value
    return values, problems


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


def _checked(kind, parameters, node, path):
    """Rules across parameters (the kind's, and parametric_mode's), each problem on the line where the
    parameter (or its seed alias) is given."""
    broken = []
    for name, message in _mode_rule(parameters) + (kind.check(parameters) if kind.check else []):
        where, line = path + ".parameters." + name, schema.line_of(node)
        for block in ("parameters", "sweep"):
            mapping = schema.child(node, block)
            given = [key.data for key, _ in (mapping.items() if mapping is not None and mapping.is_mapping() else ())
                     if kind.aliases.get(key.data, key.data) == name]
            if given:
                where, line = "%s.%s.%s" % (path, block, given[0]), schema.key_line(mapping, given[0])
                break
        broken.append((line, where, message))
    return broken


def client_parameters(kind, block, node, path):
    """``({parameter: value}, problems)``: a client block's ``parameters:`` and ``sweep:`` under orch's names, merged.

    Every list in ``sweep:`` is swept, text lists (tests, workload) included; a parameter may be in one of the two.
    """
    parameters, problems = _unalias(kind, block.get("parameters", {}), schema.child(node, "parameters"), path + ".parameters")
    swept, found = _unalias(kind, block.get("sweep", {}), schema.child(node, "sweep"), path + ".sweep")
    problems.extend(found)
    for name, values in swept.items():
        if name in parameters:
            line = schema.key_line(schema.child(node, "sweep"), name)
            problems.append((line, "%s.sweep.%s" % (path, name), "also set in parameters: give it in one place"))
        parameters[name] = _as_sweep(values)
    problems.extend(_checked(kind, parameters, node, path))
    return parameters, problems
