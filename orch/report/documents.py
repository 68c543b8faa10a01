"""What a report reads off ``orch.result/1`` documents: the figures each measured, the parameters a set sweeps.

Shared by the figures (what gets plotted) and the tables (what gets listed), so
both name and order the same things the same way. Pure: documents in, values out.
"""
import json

from orch.results import LATENCY_POINTS

__all__ = ("throughputs", "latencies", "swept_names", "common_axes", "by_client", "group_label", "value_text",
           "number", "json_key", "sort_key")


def throughputs(document):
    """``{name: rate}``: the document's throughput figures and, per test, the kind's own (redis' SET, GET)."""
    found = {name: value for name, value in sorted(document.get("throughput", {}).items()) if number(value)}
    for test, row in sorted((document.get("domain", {}).get("tests") or {}).items()):
        if isinstance(row, dict) and number(row.get("requests_per_s")):
            found["%s.requests_per_s" % test] = row["requests_per_s"]
    return found


def latencies(document):
    """``{name: summary}`` of every latency with percentiles: ``latency.*_ms``, and per test ``latency_ms``."""
    found = {}
    for name, stats in sorted(document.get("latency", {}).items()):
        if isinstance(stats, dict) and any(number(stats.get(p)) for p in LATENCY_POINTS):
            found[name] = stats
    for test, row in sorted((document.get("domain", {}).get("tests") or {}).items()):
        stats = row.get("latency_ms") if isinstance(row, dict) else None
        if isinstance(stats, dict) and any(number(stats.get(p)) for p in LATENCY_POINTS):
            found["%s_ms" % test] = stats
    return found


def number(value):
    """A number that is not a bool (JSON's ``true`` is no measurement)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def json_key(value):
    """A parameter's value as a comparable key: parameters may be lists (redis' tests), compared by their JSON text."""
    return json.dumps(value, sort_keys=True)


def sort_key(value):
    """Numbers in numeric order, anything else after them by its JSON text."""
    return (0, value, "") if number(value) else (1, 0, json_key(value))


def swept_names(documents):
    """The parameters whose value differs between the documents, the x axis first.

    The x axis is the one with the most values (numeric ones before others, then by name): a
    sweep's second parameter becomes one line per value.

    >>> docs = [{"parameters": {"clients": c, "pipeline": p, "tests": ["set"]}} for c in (1, 10, 50) for p in (1, 16)]
    >>> swept_names(docs)
    ('clients', 'pipeline')
    """
    names = sorted({name for d in documents for name in d.get("parameters", {})})
    values = {n: {json_key(d.get("parameters", {}).get(n)) for d in documents} for n in names}
    varying = [n for n in names if len(values[n]) > 1]
    numeric = {n: all(number(d.get("parameters", {}).get(n)) for d in documents) for n in varying}
    return tuple(sorted(varying, key=lambda n: (-len(values[n]), not numeric[n], n)))


def common_axes(doc_lists):
    """The swept parameters of runs compared: those that vary within any run, in the first run's order."""
    order = []
    for docs in doc_lists:
        for name in swept_names(docs):
            if name not in order:
                order.append(name)
    return tuple(order)


def value_text(value):
    """A parameter's value as a label: lists joined by commas.

    >>> value_text(["set", "get"]), value_text(16)
    ('set,get', '16')
    """
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


def group_label(document, names):
    """``clients=4, pipeline=8``: the document's values of ``names``."""
    return ", ".join("%s=%s" % (n, value_text(document.get("parameters", {}).get(n))) for n in names)


def by_client(documents):
    """``{client name: documents}``, each in the given order (a document without one is ``client``'s)."""
    clients = {}
    for document in documents:
        clients.setdefault(document.get("run", {}).get("client") or "client", []).append(document)
    return clients
