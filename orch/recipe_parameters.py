"""A client's parameters: its sweep, its seed-style names, and its target.

Names are checked from the recipe's keys alone, so a parameter given twice is
reported together with whatever is wrong with its values.
"""
from urllib.parse import urlsplit

from orch import schema
from orch.kinds import KINDS, kind_named
from orch.recipe_checks import child, keys_of
from orch.records import Target
from orch.sweep import Sweep, fixed

__all__ = ("parameters_spec", "read_sweep", "as_sweep", "unaliased", "given_twice", "in_both", "target_port", "target_of")



def parameters_spec(kind):
    fields = dict(kind.fields)
    for alias, target in kind.aliases.items():
        fields[alias] = kind.fields[target]
    return schema.Mapping(fields)


def read_sweep(kind, node, path):
    """``({parameter: Sweep}, problems)`` for a ``sweep:`` mapping node, checked against a client kind's parameters.

    Every list is swept (text lists included); a bare value is a sweep of one.
    """
    values, problems = parameters_spec(kind).read(node, path)
    problems = problems + given_twice(kind, node, path)
    if problems:
        return {}, problems
    return {name: as_sweep(value) for name, value in unaliased(kind, values).items()}, problems


def as_sweep(values):
    return values if isinstance(values, Sweep) else Sweep(values if isinstance(values, tuple) else (values,))


def unaliased(kind, parameters):
    """Seed parameter names mapped onto orch's."""
    return {kind.aliases.get(name, name): value for name, value in parameters.items()}


def given_twice(kind, node, path):
    """A parameter given under two of its names (``clients`` and ``client_counts``), read from the names alone."""
    problems, given_as = [], {}
    for name in keys_of(node):
        if name not in kind.fields and name not in kind.aliases:
            continue  # an unknown field: the schema says so
        canonical = kind.aliases.get(name, name)
        if canonical in given_as:
            problems.append((schema.key_line(node, name), "%s.%s" % (path, name), "same parameter as %s (given twice)" % given_as[canonical]))
        else:
            given_as[canonical] = name
    return problems


def in_both(kind, node, path):
    """A parameter given in ``parameters`` and in ``sweep``."""
    fixed_names = {kind.aliases.get(name, name) for name in keys_of(child(node, "parameters"))}
    sweep = child(node, "sweep")
    return [(schema.key_line(sweep, name), "%s.sweep.%s" % (path, name), "also set in parameters: give it in one place")
            for name in keys_of(sweep) if kind.aliases.get(name, name) in fixed_names]


def target_port(block, node, path):
    """The one thing wrong with a ``target_endpoint`` that its pattern lets through: a port out of range."""
    url = block.get("target_endpoint")
    try:
        url and urlsplit(url).port
    except ValueError:
        return [(schema.line_of(child(node, "target_endpoint")), path + ".target_endpoint", "%r has an invalid port" % url)]
    return []


def target_of(kind, block, parameters):
    """The client's target: a URL (``target_endpoint``) or a service found by name."""
    service = block.get("target_service", {})
    name = service.get("name") or kind.target
    target_kind = kind_named(name, KINDS) if name else None
    check = service.get("health_check_endpoint")
    # the recipe's path first; the kind's own as well, since the seed's recipes name
    # paths that newer servers dropped (Chroma's v1 heartbeat)
    paths = [check] if check and check.startswith("/") else []
    if target_kind and target_kind.health_path and target_kind.health_path not in paths:
        paths.append(target_kind.health_path)
    # wait_for_service: in parameters or (one value) in sweep
    wait = fixed(parameters).get("wait_for_service", 300)
    target = Target(name=name, port=service.get("port"), health_check_endpoint=check, kind=target_kind and target_kind.name,
                    health_paths=tuple(paths), wait=wait)
    url = block.get("target_endpoint")
    if url:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        target = target.set(endpoint=url, host=parts.hostname, port=port, scheme=parts.scheme)
    return target
