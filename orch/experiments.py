"""Experiments: services and the clients that load them, from one recipe (parsing and the pure parts).

```yaml
experiment:
  name: redis-study
  keep_services: false          # default: services stop once every client has ended
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

from pyrsistent import PClass, field

from orch import schema
from orch.errors import Problem, RecipeError
from orch.recipe import parse_job

__all__ = ("Member", "Experiment", "parse_experiment", "experiment_state", "conductor_script")

NAME = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"


class Member(PClass):
    """One service or client of an experiment: its recipe text and where it came from."""

    role = field(type=str, mandatory=True)
    alias = field(type=str, mandatory=True)
    text = field(type=str, mandatory=True)
    source = field(type=str, mandatory=True)
    target = field(type=(str, type(None)), initial=None)


class Experiment(PClass):
    name = field(type=str, mandatory=True)
    description = field(type=(str, type(None)), initial=None)
    keep_services = field(type=bool, initial=False)
    services = field(type=tuple, initial=())
    clients = field(type=tuple, initial=())


class _Inline:
    """An inline service:/client: block: any mapping here; parse_job checks it as a recipe."""

    def read(self, node, path):
        if not node.is_mapping():
            return None, [(schema.line_of(node), path, "expected the fields of a recipe block")]
        return node, []


def _item(role):
    fields = {"recipe": schema.Text(allow_empty=False), role: _Inline()}
    if role == "service":
        fields["as"] = schema.Text(pattern=NAME, hint="a plain name")
    else:
        fields["target"] = schema.Text(pattern=NAME, hint="the name of one of the experiment's services")
    check = lambda item: [] if ("recipe" in item) != (role in item) else [("recipe", "give exactly one of recipe and %s" % role)]
    return schema.Mapping(fields, check=check)


SPEC = schema.Mapping(
    {
        "experiment": schema.Mapping(
            {
                "name": schema.Text(pattern=NAME, hint="a plain name", allow_empty=False),
                "description": schema.Text(),
                "keep_services": schema.Boolean(),
                "services": schema.ListOf(_item("service")),
                "clients": schema.ListOf(_item("client")),
            },
            required=("name", "services"),
        )
    },
    required=("experiment",),
)


def _inline_text(role, node):
    """Recipe text for an inline block, and the offset that maps its lines back onto the experiment file."""
    body = node.as_yaml()
    text = "%s:\n%s" % (role, "".join("  " + line + "\n" if line else "\n" for line in body.splitlines()))
    first_key = schema._ruamel(node).lc.line + 1
    return text, first_key - 2


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


def parse_experiment(text, filename="<experiment>", *, site="meluxina", runtime="apptainer", kinds=None, read=None):
    """The ``Experiment`` a recipe describes, every member checked; or ``RecipeError`` with every problem.

    + read: ``path -> text`` for member recipe files (default: the file system)
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
    base = os.path.dirname(os.path.abspath(filename)) if not filename.startswith("<") else os.getcwd()
    members = {"service": [], "client": []}
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
            members[role].append(Member(role=role, alias=alias, text=member_text, source=source, target=item.get("target")))
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
    for client in members["client"]:
        if client.target is None and len(aliases) != 1:
            problems.append(Problem(filename, 0, "experiment.clients", "a client without target: needs an experiment with exactly one service"))
            break
    if problems:
        raise RecipeError(problems)
    clients = tuple(c.set(target=c.target or aliases[0]) for c in members["client"])
    return Experiment(name=block["name"], description=block.get("description"), keep_services=block.get("keep_services", False),
                      services=tuple(members["service"]), clients=clients)


def _read(path):
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def experiment_state(members):
    """``(state, reason)`` of an experiment from its members' records.

    Done when every client has ended: completed if they all completed. A
    failed service fails the experiment at once (its clients stop waiting).
    """
    clients = [m for m in members if m.get("role") == "client"]
    services = [m for m in members if m.get("role") == "service"]
    for service in services:
        if service["state"] == "failed":
            return "failed", "service %s failed: %s" % (service.get("alias") or service["name"], service.get("reason") or "")
    terminal = ("completed", "failed", "cancelled")
    if clients and all(c["state"] in terminal for c in clients):
        bad = [c for c in clients if c["state"] != "completed"]
        if not bad:
            return "completed", ""
        return bad[0]["state"], "client %s %s: %s" % (bad[0].get("alias") or bad[0]["name"], bad[0]["state"], bad[0].get("reason") or "")
    if any(m["state"] == "running" for m in members):
        return "running", ""
    if all(m["state"] in terminal for m in members):
        return "cancelled", "every job ended"
    return "pending", ""


def conductor_script(experiment_name, run_id, run_dir, service_job_ids):
    """The small job that stops the services once every client has ended (submitted with afterany)."""
    from orch.quoting import sbatch_flag, shell_line

    lines = [
        "#!/bin/bash",
        sbatch_flag("job-name", "%s_%s_conductor" % (experiment_name, run_id)),
        sbatch_flag("output", "%s/logs/conductor-%%j.out" % run_dir),
        sbatch_flag("time", "00:05:00"),
        "# rendered by orch: stops the experiment's services once its clients have ended",
        shell_line("scancel", *service_job_ids),
        shell_line("printf", "%s\\n", "services stopped") + " >&2",
    ]
    return "\n".join(lines) + "\n"

