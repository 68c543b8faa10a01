"""Kinds: what a recipe's ``name`` selects, as data.

A kind is a record: its role (service or client), its list of section
functions, the recipe fields of its own, and a few defaults. The built-in
kinds live in this package, one module each, found by ``discovered`` (a new
kind is a new module, named nowhere else); ``kind_named`` also finds a
seed-style variant name (``chroma_benchmark_hd``, ``redis_parametric_benchmark``).
"""
import pkgutil
import re
from importlib import import_module

from pyrsistent import PClass, field, pmap

__all__ = ("Kind", "KINDS", "SERVICE_KINDS", "CLIENT_KINDS", "kind_named", "register", "kinds_in", "discovered", "module_kinds")


def _nothing(_):
    return ()


class Kind(PClass):
    name = field(type=str, mandatory=True)
    role = field(type=str, mandatory=True, invariant=lambda r: (r in ("service", "client"), "role"))
    summary = field(type=str, initial="")
    sections = field(mandatory=True)
    # recipe fields of this kind: name -> spec (orch.schema); for clients, the parameters
    fields = field(initial=pmap())
    # parameter names the seed's recipes use -> orch's name
    aliases = field(initial=pmap())
    # environment variables the seed's recipes configure this kind with -> field name
    env_fields = field(initial=pmap())
    port = field(type=(int, type(None)), initial=None)
    docker_source = field(type=(str, type(None)), initial=None)
    # HTTP path that answers once the service is up (None: probe with a TCP connect)
    health_path = field(type=(str, type(None)), initial=None)
    # services checked with their own client: the URL schemes that name them (redis://), which
    # their health_check.endpoint may use (orch.kinds.health)
    endpoint_schemes = field(type=tuple, initial=())
    # clients: the service kind they load
    target = field(type=(str, type(None)), initial=None)
    # clients: ``parameters -> [(parameter, message)]``, rules across parameters, given every parameter
    # by orch's name once aliases and sweep: are read (a Sweep where several values are given)
    check = field(initial=None)
    # clients: ``parameters -> names`` of the environment variables the load generator reads (credentials):
    # the recipe's values for them are handed to it and taken literally
    reads_env = field(initial=lambda: _nothing)
    # clients: the parameters passed to the load generator (None: not known, for a kind made by hand)
    passed = field(initial=None)
    # services: field -> the command-line options that set the same thing; with the recipe's args
    # orch appends the field's own flags, and an arg among these options is a problem
    arg_options = field(initial=pmap())
    # services: the names of the kind's own program (a recipe's command naming one still gets orch's flags)
    programs = field(initial=())
    # services: whether it runs the recipe's init_script (SQL)
    init_script = field(type=bool, initial=False)
    # services: ``settings -> bind mounts`` the kind's fields add in its image (not on the host runtime)
    binds = field(initial=lambda: _nothing)


def kinds_in(found, where):
    """The kinds ``found`` holds: a ``Kind``, or a list or tuple of them; ``TypeError`` for anything else.

    + where: what to name in the error (``--plugin mod:attr``, a module)
    """
    items = found if isinstance(found, (list, tuple)) else (found,)
    for item in items:
        if not isinstance(item, Kind):
            raise TypeError("%s: %r is not an orch.kinds.Kind" % (where, item))
    return tuple(items)


def discovered(package=__name__):
    """Every kind of the package's modules: each module's ``KIND`` (or ``KINDS``), in module-name order.

    A module without either is a helper (``common``, ``client``). A new kind is a
    new module here; nothing else names it.
    """
    found = ()
    for module in sorted(info.name for info in pkgutil.iter_modules(import_module(package).__path__)):
        found += module_kinds(import_module("%s.%s" % (package, module)))
    return found


def module_kinds(module, attrs=("KIND", "KINDS")):
    """The kinds a module holds under ``attrs`` (those it has); ``TypeError`` for anything else there."""
    found = ()
    for attr in attrs:
        if hasattr(module, attr):
            found += kinds_in(getattr(module, attr), "%s.%s" % (module.__name__, attr))
    return found


def by_name(kinds):
    """``{name: kind}``; two kinds of one name are an error, not a silent override."""
    table = {}
    for kind in kinds:
        if kind.name in table:
            raise ValueError("two kinds are called %r" % kind.name)
        table[kind.name] = kind
    return table


KINDS = by_name(discovered())
SERVICE_KINDS = tuple(kind for kind in KINDS.values() if kind.role == "service")
CLIENT_KINDS = tuple(kind for kind in KINDS.values() if kind.role == "client")


def register(kind, kinds=None):
    """Return a kinds table with ``kind`` added (the built-in table is never changed)."""
    table = dict(KINDS if kinds is None else kinds)
    table[kind.name] = kind
    return table


# the seed's sweep clients: <svc>_parametric_benchmark, or <svc>_parametric_benchmark_<suffix>
PARAMETRIC = re.compile(r"(.+?)_parametric_benchmark(?:_.*)?")


def kind_named(name, kinds=None):
    """The kind a recipe ``name`` selects, or None.

    Exact names first; then the seed's variants: ``<svc>_parametric_benchmark``, with
    a suffix of its own too (``redis_parametric_benchmark_hd``: the client, never the
    ``redis`` service), and ``<kind>_<suffix>`` (``chroma_benchmark_hd``).

    >>> kind_named("chroma_benchmark_hd").name
    'chroma_benchmark'
    >>> kind_named("redis_parametric_benchmark").name, kind_named("redis_parametric_benchmark_hd").name
    ('redis_benchmark', 'redis_benchmark')
    >>> kind_named("nosuchkind") is None
    True
    """
    table = KINDS if kinds is None else kinds
    if name in table:
        return table[name]
    parametric = PARAMETRIC.fullmatch(name)
    if parametric:
        return table.get(parametric.group(1) + "_benchmark")
    prefixes = [k for k in table if name.startswith(k + "_")]
    return table[max(prefixes, key=len)] if prefixes else None
