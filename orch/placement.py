"""Placement: an experiment's member kept apart from, or together with, the node(s) of one of its services (pure).

```yaml
clients:
  - recipe: ../clients/redis_benchmark.yaml
    target: cache
    placement: {apart_from: cache}        # not on cache's node(s); a list keeps it off several services' nodes
  - client: {name: redis_benchmark}
    placement: {together_with: cache}     # on the node where cache's job runs (its batch host)
```

A service's node is known only once it runs, so a placed member is submitted
held (``sbatch --hold``) and a small placement job per placed member, started
by SLURM once every service it names has begun (``--dependency=after:``), sets
the member's ``ExcNodeList`` or ``ReqNodeList`` to those nodes with ``scontrol
update`` and releases it; if one of those services ended (or was cancelled)
first, it cancels the member instead, so nothing stays held
(``orch.sections.placer`` renders that job). This module checks the rules and
says, for ``orch status``, where a placed member stands.
"""
from pyrsistent import PClass, field

from orch.errors import Problem
from orch.records import NAME

__all__ = ("Placement", "placement_spec", "placement_of", "placement_problems", "placement_text", "placement_reason")

RULES = ("apart_from", "together_with")


class Placement(PClass):
    """``rule``: apart_from or together_with; ``anchors``: the services' names (one for together_with)."""

    rule = field(type=str, mandatory=True, invariant=lambda r: (r in RULES, "rule"))
    anchors = field(type=tuple, mandatory=True)


def placement_spec():
    """The spec of an experiment entry's ``placement:`` (schema, and so strictyaml, loaded only here:
    ``orch status`` reads placements through ``placement_reason`` and needs neither)."""
    from orch import schema

    name = schema.Text(pattern=NAME, hint="the name of one of the experiment's services")
    return schema.Mapping(
        {"apart_from": schema.TextList(name), "together_with": name},
        check=lambda given: [] if len(given) == 1 else [(RULES[0], "give exactly one of apart_from and together_with")],
    )


def placement_of(item):
    """The ``Placement`` an experiment entry asks for (read by ``placement_spec()``), or None."""
    given = item.get("placement")
    if not given:
        return None
    rule = next(iter(given))
    anchors = given[rule]
    return Placement(rule=rule, anchors=tuple(anchors) if rule == "apart_from" else (anchors,))


def placement_problems(filename, node, placed, services, clients):
    """Problems with the experiment's placements, each at its line.

    + node: the experiment's ``experiment:`` mapping node
    + placed: ``(key, index, alias, Placement, Job)`` for every member that has a placement (key: services or clients)
    + services / clients: every service's name (the monitoring's included) / every client's
    """
    from orch import schema

    problems = []
    for key, index, alias, placement, job in placed:
        entry = node[key][index]
        where = "experiment.%s[%d].placement" % (key, index)
        line = schema.key_line(entry["placement"], placement.rule)
        problems.extend(Problem(filename, line, "%s.%s" % (where, placement.rule), message)
                        for message in _anchor_problems(alias, placement, services, clients))
        if job.resources.nodelist:
            problems.append(Problem(filename, line, "%s.%s" % (where, placement.rule),
                                    "%s has resources.nodelist: its nodes are chosen already, leave one of them out" % alias))
    # a service naming itself is its own problem above
    cycle = _cycle({alias: tuple(a for a in p.anchors if a != alias) for key, _, alias, p, _ in placed if key == "services"})
    if cycle:
        problems.append(Problem(filename, schema.key_line(node, "services"), "experiment.services",
                                "services placed by each other's nodes wait for each other forever: %s" % " -> ".join(cycle)))
    return problems


def _anchor_problems(alias, placement, services, clients):
    problems = []
    for anchor in placement.anchors:
        if anchor in clients and anchor not in services:
            problems.append("%r is a client: a member is placed by a service's nodes" % anchor)
        elif anchor not in services:
            problems.append("no service %r in this experiment (it has: %s)" % (anchor, ", ".join(services) or "none"))
        elif anchor == alias:
            problems.append("%s cannot be placed %s itself" % (alias, placement.rule.replace("_", " ")))
    if len(set(placement.anchors)) != len(placement.anchors):
        problems.append("a service is named twice")
    return problems


def _cycle(edges):
    """A cycle in ``{name: names it waits for}`` as a path (first name repeated at the end), or None."""
    for start in sorted(edges):
        path, todo = [start], [(start, iter(edges.get(start, ())))]
        while todo:
            name, following = todo[-1]
            step = next(following, None)
            if step is None:
                todo.pop()
                path.pop()
            elif step == start:
                return path + [start]
            elif step in edges and step not in path:
                path.append(step)
                todo.append((step, iter(edges[step])))
    return None


def placement_text(placement):
    """``apart from cache and prometheus`` / ``together with cache``.

    >>> placement_text(Placement(rule="apart_from", anchors=("a", "b")))
    'apart from a and b'
    """
    return "%s %s" % (placement.rule.replace("_", " "), " and ".join(placement.anchors))


def placement_reason(placement, placed, state, reason, job_id=None):
    """What ``orch status`` says of a placed member: why it waits, where it was placed, or why it was not.

    + placement: the run record's ``placement`` (``rule``, ``with``)
    + placed: the member's ``state/placement`` marker the placement job wrote (None: not yet)
    + state, reason: the member's state and SLURM's reason
    + job_id: the placement job's SLURM id

    >>> placement_reason({"rule": "apart_from", "with": ["cache"]}, None, "pending", "JobHeldUser", "7")
    "held until cache runs; then its placement job 7 keeps it off cache's node(s)"
    >>> placement_reason({"rule": "apart_from", "with": ["cache"]}, {"released": True, "nodes": "n1"}, "pending", "BadConstraints")
    'no node fits it (SLURM: BadConstraints): placed apart from cache, not on n1'
    """
    anchors = tuple(placement["with"])
    if placed is not None and placed.get("released") is False:
        return placed.get("reason") or reason
    if state != "pending":
        return reason
    if placed is None:
        owners = " and ".join("%s's" % anchor for anchor in anchors)
        does = "keeps it off %s node(s)" % owners if placement["rule"] == "apart_from" else "puts it on %s node" % owners
        return "held until %s runs; then its placement job%s %s" % (" and ".join(anchors), " %s" % job_id if job_id else "", does)
    what = placement_text(Placement(rule=placement["rule"], anchors=anchors))
    nodes = placed.get("nodes") or "?"
    where = "not on %s" % nodes if placement["rule"] == "apart_from" else "on %s" % nodes
    if reason == "BadConstraints":
        return "no node fits it (SLURM: BadConstraints): placed %s, %s" % (what, where)
    return "%s: placed %s, %s" % (reason or "waiting", what, where)
