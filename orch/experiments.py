"""Experiments: services and the clients that load them, from one recipe (parsing and the pure parts).

```yaml
experiment:
  name: redis-study
  keep_services: false          # default: services stop once every client has ended
  sweep:                        # every client runs once per combination (one job array each)
    clients: [1, 10, 50]
  monitoring:                   # Prometheus scraping every member's exporter, found through file_sd
    exporter: node_exporter     # node_exporter (services and clients), cadvisor (services), none
    scrape_interval: 5s
    grafana: true               # or the fields of a service block: {ports: [3001]}
  services:
    - recipe: ../services/redis.yaml     # a recipe file, relative to this one
      as: cache                          # the name clients use (default: the service's name)
    - service: {name: redis, ports: [6380]}   # or inline, the fields of a service: block
  clients:
    - recipe: ../clients/redis_benchmark.yaml
      target: cache
    - client: {name: redis_benchmark, parameters: {clients: 10}}
      target: redis
```

Every member is checked as the recipe it is (file, line, field), and a client
naming a service the experiment lacks is a problem at its ``target`` line.
"""
import os

from pyrsistent import PClass, field, pmap

from orch import schema
from orch.errors import Problem, RecipeError
from orch.metrics import DEFAULT_SCRAPE_INTERVAL
from orch.placement import Placement, placement_of, placement_problems, placement_spec
from orch.recipe import parse_job
from orch.sweep import Sweep

__all__ = ("Member", "Experiment", "parse_experiment")

NAME = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"


class Member(PClass):
    """One service or client of an experiment: its recipe text and where it came from."""

    role = field(type=str, mandatory=True)
    alias = field(type=str, mandatory=True)
    text = field(type=str, mandatory=True)
    source = field(type=str, mandatory=True)
    target = field(type=(str, type(None)), initial=None)
    # the experiment's sweep, as this client's kind reads it: {parameter: Sweep}
    sweep = field(initial=pmap())
    # Prometheus or Grafana started for the experiment (not a service under test)
    monitoring = field(type=bool, initial=False)
    # kept apart from or together with services' nodes (None: wherever SLURM puts it)
    placement = field(type=(Placement, type(None)), initial=None)


class Experiment(PClass):
    name = field(type=str, mandatory=True)
    description = field(type=(str, type(None)), initial=None)
    keep_services = field(type=bool, initial=False)
    services = field(type=tuple, initial=())
    clients = field(type=tuple, initial=())
    # exporters beside every member under test: node_exporter, cadvisor
    exporters = field(type=tuple, initial=())
    # None: no monitoring block
    scrape_interval = field(type=(str, type(None)), initial=None)

    @property
    def prometheus(self):
        return next((m for m in self.services if m.monitoring and m.alias == "prometheus"), None)


class _Inline:
    """An inline service:/client: block: any mapping here; parse_job checks it as a recipe."""

    def __init__(self, expected="the fields of a recipe block"):
        self.expected = expected

    def read(self, node, path):
        if not node.is_mapping():
            return None, [(schema.line_of(node), path, "expected %s" % self.expected)]
        return node, []


def _item(role):
    fields = {"recipe": schema.Text(allow_empty=False), role: _Inline(), "placement": placement_spec()}
    if role == "service":
        fields["as"] = schema.Text(pattern=NAME, hint="a plain name")
    else:
        fields["target"] = schema.Text(pattern=NAME, hint="the name of one of the experiment's services")
    check = lambda item: [] if ("recipe" in item) != (role in item) else [("recipe", "give exactly one of recipe and %s" % role)]
    return schema.Mapping(fields, check=check)


DURATION = r"(?:\d+(?:ms|s|m|h|d|w|y))+"
EXPORTERS = ("node_exporter", "cadvisor")
MONITORING_SERVICES = ("prometheus", "grafana")

MONITORING = schema.Mapping(
    {
        "prometheus": schema.OneOf(schema.Boolean(), _Inline("true, false or the fields of a service block")),
        "grafana": schema.OneOf(schema.Boolean(), _Inline("true, false or the fields of a service block")),
        "exporter": schema.TextList(schema.Text(choices=EXPORTERS + ("none",))),
        "scrape_interval": schema.Text(pattern=DURATION, hint="a Prometheus duration (e.g. 5s, 1m)"),
    },
    check=lambda m: [("grafana", "Grafana shows the experiment's Prometheus: leave prometheus on")]
    if m.get("grafana", False) is not False and m.get("prometheus", True) is False else [],
)

SPEC = schema.Mapping(
    {
        "experiment": schema.Mapping(
            {
                "name": schema.Text(pattern=NAME, hint="a plain name", allow_empty=False),
                "description": schema.Text(),
                "keep_services": schema.Boolean(),
                "services": schema.ListOf(_item("service")),
                "clients": schema.ListOf(_item("client")),
                # parameter -> values: checked against each client's kind once the clients are known
                "sweep": _Inline("parameters, each with a list of values"),
                "monitoring": MONITORING,
            },
            required=("name", "services"),
        )
    },
    required=("experiment",),
)


def _inline_text(role, node, preface=()):
    """Recipe text for an inline block, and the offset that maps its lines back onto the experiment file.

    ``preface``: lines of fields orch adds before the block's own (a monitoring service's name).
    """
    body = node.as_yaml()
    head = "".join("  %s\n" % line for line in preface)
    text = "%s:\n%s%s" % (role, head, "".join("  " + line + "\n" if line else "\n" for line in body.splitlines()))
    first_key = schema._ruamel(node).lc.line + 1
    return text, first_key - 2 - len(preface)


def _monitoring_members(block, node, filename, parse):
    """The Prometheus (and Grafana) an experiment's ``monitoring:`` asks for, as service members; and problems."""
    monitoring = block.get("monitoring")
    if monitoring is None:
        return [], []
    interval = monitoring.get("scrape_interval", DEFAULT_SCRAPE_INTERVAL)
    members, problems = [], []
    for name in MONITORING_SERVICES:
        wanted = monitoring.get(name, name == "prometheus")
        if wanted is False:
            continue
        preface = ["name: %s" % name]
        given = set() if wanted is True else {key.data for key, _ in wanted.items()}
        if "name" in given:
            line = schema.key_line(node["monitoring"][name], "name")
            problems.append(Problem(filename, line, "experiment.monitoring.%s.name" % name, "the monitoring's %s is named %s: leave name out" % (name, name)))
            continue
        if name == "prometheus" and "scrape_interval" not in given:
            preface.append("scrape_interval: %s" % interval)
        if name == "grafana" and "prometheus_service" not in given:
            preface.append("prometheus_service: prometheus")
        if wanted is True:
            text, offset = "service:\n%s" % "".join("  %s\n" % line for line in preface), None
        else:
            text, offset = _inline_text("service", wanted, preface)
        found = parse(text, offset, "experiment.monitoring.%s" % name)
        if found is not None:
            members.append(Member(role="service", alias=name, text=text, source=filename, monitoring=True))
    return members, problems


def _experiment_sweep(node, clients, filename, kinds):
    """Each client with the experiment's ``sweep:`` as its kind reads it; and problems (at the sweep's lines)."""
    from orch.kinds import kind_named
    from orch.recipe import read_sweep

    out, problems = [], []
    for member, job in clients:
        values, found = read_sweep(kind_named(job.kind, kinds), node, "experiment.sweep")
        problems.extend(Problem(filename, line, path, "%s (for client %s)" % (message, member.alias)) for line, path, message in found)
        for name in values:
            own = job.parameters.get(name)
            if isinstance(own, Sweep) and len(own) > 1:
                problems.append(Problem(filename, schema.key_line(node, name), "experiment.sweep.%s" % name,
                                        "client %s sweeps %s itself: give the values in one place" % (member.alias, name)))
        out.append(member.set(sweep=pmap(values)))
    return out, problems


def _member_problems(error, source, offset, prefix):
    """A member recipe's problems, placed in the experiment file when the member is inline."""
    if offset is None:
        return list(error.problems)
    moved = []
    for problem in error.problems:
        field = problem.field.split(".", 1)[1] if "." in problem.field else problem.field
        moved.append(Problem(source, problem.line + offset if problem.line else 0, "%s.%s" % (prefix, field) if field else prefix,
                             problem.message))
    return moved


def parse_experiment(text, filename="<experiment>", *, site="meluxina", runtime=None, kinds=None, read=None):
    """The ``Experiment`` a recipe describes, every member checked; or ``RecipeError`` with every problem.

    + read: ``path -> text`` for member recipe files (default: the file system)

    Member recipe files are relative to the experiment file's directory; for
    text that came from no file (``filename`` in angle brackets) they are
    relative to wherever ``read`` reads from.
    """
    read = read or _read
    try:
        document = schema.read_document(text)
    except Exception as error:  # strictyaml and ruamel raise many types, all with a mark
        mark = getattr(error, "problem_mark", None)
        raise RecipeError([Problem(filename, mark.line + 1 if mark else 0, "", "not a valid experiment: %s" % getattr(error, "problem", error))]) from None
    value, found = SPEC.read(document, "")
    problems = [Problem(filename, line, path, message) for line, path, message in found]
    if problems:
        raise RecipeError(problems)
    block = value["experiment"]
    node = document["experiment"]
    base = os.path.dirname(filename) if not filename.startswith("<") else ""
    members = {"service": [], "client": []}
    jobs, positions = {}, {}
    for role, key in (("service", "services"), ("client", "clients")):
        for index, item in enumerate(block.get(key, ())):
            prefix = "experiment.%s[%d]" % (key, index)
            if "recipe" in item:
                source = os.path.normpath(os.path.join(base, item["recipe"]))
                try:
                    member_text, offset = read(source), None
                except OSError as error:
                    line = schema.key_line(node[key][index], "recipe")
                    problems.append(Problem(filename, line, prefix + ".recipe", "cannot read %s: %s" % (source, error.strerror)))
                    continue
            else:
                source = filename
                member_text, offset = _inline_text(role, item[role])
            try:
                job = parse_job(member_text, source, site=site, runtime=runtime, kinds=kinds)
            except RecipeError as error:
                problems.extend(_member_problems(error, source, offset, prefix))
                continue
            if job.role != role:
                problems.append(Problem(filename, schema.line_of(node[key][index]), prefix, "%s is a %s recipe" % (source, job.role)))
                continue
            alias = item.get("as") or job.name
            members[role].append(Member(role=role, alias=alias, text=member_text, source=source, target=item.get("target"),
                                        placement=placement_of(item)))
            jobs[id(members[role][-1])] = job
            positions[id(members[role][-1])] = index
    aliases = [m.alias for m in members["service"]]
    for index, alias in enumerate(aliases):
        if alias in aliases[:index]:
            problems.append(Problem(filename, schema.line_of(node["services"][index]), "experiment.services[%d]" % index,
                                    "a second service named %r: name one with as:" % alias))
    for index, item in enumerate(block.get("clients", ())):
        target = item.get("target")
        if target is not None and target not in aliases:
            problems.append(Problem(filename, schema.key_line(node["clients"][index], "target"), "experiment.clients[%d].target" % index,
                                    "no service %r in this experiment (it has: %s)" % (target, ", ".join(aliases) or "none")))
    kind_of = {m.alias: jobs[id(m)].kind for m in members["service"]}
    for client in members["client"]:
        index = positions[id(client)]
        wanted = jobs[id(client)].target.kind
        aimed = client.target if client.target is not None else (aliases[0] if len(aliases) == 1 else None)
        if wanted and aimed in kind_of and kind_of[aimed] != wanted:
            item = node["clients"][index]
            line = schema.key_line(item, "target") if client.target is not None else schema.line_of(item)
            problems.append(Problem(filename, line, "experiment.clients[%d]" % index + (".target" if client.target else ""),
                                    "%s is a %s service; client %s loads %s" % (aimed, kind_of[aimed], client.alias, wanted)))
    for client in members["client"]:
        if client.target is None and len(aliases) != 1:
            problems.append(Problem(filename, 0, "experiment.clients", "a client without target: needs an experiment with exactly one service"))
            break
    for index, alias in enumerate(aliases):
        if alias in MONITORING_SERVICES and "monitoring" in block:
            problems.append(Problem(filename, schema.line_of(node["services"][index]), "experiment.services[%d]" % index,
                                    "%r is the monitoring's own service: name this one with as:" % alias))

    def parse_monitor(text, offset, prefix):
        try:
            return parse_job(text, filename, site=site, runtime=runtime, kinds=kinds)
        except RecipeError as error:
            if offset is not None:
                problems.extend(_member_problems(error, filename, offset, prefix))
            else:  # orch's own text: its problems belong at the monitoring: line
                line = schema.key_line(node, "monitoring")
                problems.extend(Problem(filename, line, prefix + "." + p.field.split(".", 1)[-1], p.message) for p in error.problems)
            return None

    monitors, found = _monitoring_members(block, node, filename, parse_monitor)
    problems.extend(found)
    placed = [(role + "s", positions[id(m)], m.alias, m.placement, jobs[id(m)])
              for role in ("service", "client") for m in members[role] if m.placement]
    problems.extend(placement_problems(filename, node, placed, [m.alias for m in monitors] + aliases,
                                       [m.alias for m in members["client"]]))
    clients = [(c, jobs[id(c)]) for c in members["client"]]
    if "sweep" in block:
        swept, found = _experiment_sweep(block["sweep"], clients, filename, kinds)
        problems.extend(found)
    else:
        swept = [c for c, _ in clients]
    if problems:
        raise RecipeError(problems)
    clients = tuple(c.set(target=c.target or aliases[0]) for c in swept)
    monitoring = block.get("monitoring")
    exporters = ()
    if monitoring is not None:
        exporters = tuple(e for e in monitoring.get("exporter", ("node_exporter",)) if e != "none")
    return Experiment(name=block["name"], description=block.get("description"), keep_services=block.get("keep_services", False),
                      services=tuple(monitors) + tuple(members["service"]), clients=clients, exporters=exporters,
                      scrape_interval=None if monitoring is None else monitoring.get("scrape_interval", DEFAULT_SCRAPE_INTERVAL))


def _read(path):
    with open(path, encoding="utf-8") as handle:
        return handle.read()
