"""The report's tables as rows (dicts, one per line; the columns are their keys in order).

Results per sweep point, the comparison of two runs (B/A), the environment the
figures were measured in, an experiment's jobs and its Prometheus's scrape
targets. Pure: documents and records in, rows out.
"""
import json

from orch.report.documents import common_axes, json_key, latencies, number, sort_key, swept_names, throughputs
from orch.results import LATENCY_POINTS, columns_of, flatten

__all__ = ("result_rows", "comparison_rows", "environment_rows", "member_rows", "target_rows")

TEXT_CELL_LIMIT = 40


def result_rows(documents):
    """``orch results``' rows (one per sweep point, in sweep order) for a report's table.

    Added: per-test latency percentiles, which ``flatten`` leaves nested. Left out: columns
    empty in every row and long prose (definitions), which belong to the documents, not a table.
    """
    axes = swept_names(documents)
    ordered = sorted(documents, key=lambda d: tuple(sort_key(d.get("parameters", {}).get(n)) for n in axes))
    rows = []
    for document in ordered:
        row = flatten(document)
        partial = row.pop("partial")
        for metric, stats in latencies(document).items():
            for point in LATENCY_POINTS:
                if number(stats.get(point)):
                    row.setdefault("%s.%s" % (metric, point), stats[point])
        row["partial"] = partial
        rows.append(row)
    columns = columns_of(rows)
    keep = [c for c in columns
            if any(row.get(c) is not None for row in rows)
            and not any(isinstance(row.get(c), str) and len(row[c]) > TEXT_CELL_LIMIT for row in rows)]
    return [{c: row.get(c) for c in keep} for row in rows]


def _key_figures(document):
    figures = dict(throughputs(document))
    for metric, stats in latencies(document).items():
        for point in ("p50", "p99"):
            if number(stats.get(point)):
                figures["%s.%s" % (metric, point)] = stats[point]
    return figures


def comparison_rows(docs_a, docs_b):
    """One row per (matching parameter combination, key figure): A, B and B/A.

    Combinations match on the parameters swept in either run; a combination only one run
    has is listed with the other's figures empty, so nothing silently disappears.
    """
    axes = common_axes([docs_a, docs_b])

    def combination(document):
        return tuple(json_key(document.get("parameters", {}).get(n)) for n in axes)

    a = {combination(d): d for d in docs_a}
    b = {combination(d): d for d in docs_b}
    rows = []
    for key in sorted(set(a) | set(b), key=lambda k: tuple(sort_key(json.loads(v)) for v in k)):
        first = a.get(key) or b.get(key)
        fa = _key_figures(a[key]) if key in a else {}
        fb = _key_figures(b[key]) if key in b else {}
        for figure in sorted(set(fa) | set(fb)):
            row = {n: first.get("parameters", {}).get(n) for n in axes}
            va, vb = fa.get(figure), fb.get(figure)
            row.update({"figure": figure, "A": va, "B": vb,
                        "B/A": (vb / va) if number(va) and number(vb) and va else None})
            rows.append(row)
    return rows


def environment_rows(run):
    """What the figures were measured with: node, SLURM job, tool, orch version (distinct values)."""
    docs = run["documents"]

    def distinct(get):
        values = []
        for d in docs:
            value = get(d)
            if value not in (None, "") and value not in values:
                values.append(value)
        return ", ".join(str(v) for v in values) or "-"

    env = lambda d, k: (d.get("environment") or {}).get(k)  # noqa: E731
    return [
        {"field": "run", "value": "%s (%s, %s)" % (run["record"].get("id"), run["record"].get("job_name") or "-",
                                                  run["record"].get("kind") or "-")},
        {"field": "state", "value": run["record"].get("state") or "-"},
        {"field": "nodes", "value": distinct(lambda d: env(d, "node"))},
        {"field": "SLURM job ids", "value": distinct(lambda d: env(d, "slurm_job_id")) if any(env(d, "slurm_job_id") for d in docs)
         else str(run["record"].get("job_id") or "-")},
        {"field": "array tasks", "value": distinct(lambda d: env(d, "array_task"))},
        {"field": "tool", "value": distinct(lambda d: " ".join(str(x) for x in (env(d, "tool"), env(d, "tool_version")) if x))},
        {"field": "orch version", "value": distinct(lambda d: (d.get("run") or {}).get("orch_version"))},
        {"field": "target", "value": distinct(lambda d: (d.get("target") or {}).get("url"))},
        {"field": "measured", "value": "%s .. %s" % (
            min((d["run"]["started_at"] for d in docs if (d.get("run") or {}).get("started_at")), default="-"),
            max((d["run"]["ended_at"] for d in docs if (d.get("run") or {}).get("ended_at")), default="-"))},
    ]


def member_rows(members):
    """One row per job of an experiment: which part it is, how it ended and why."""
    return [{"member": m.get("alias") or m.get("name", ""), "role": "monitoring" if m.get("monitoring") else m.get("role", ""),
             "kind": m.get("kind", ""), "job": m.get("job_id") or "-", "state": m.get("state", ""), "reason": m.get("reason") or "-"}
            for m in members]


def target_rows(answer):
    """Rows of Prometheus's ``/api/v1/targets`` answer (None when there is none)."""
    try:
        targets = answer["data"]["activeTargets"]
    except (TypeError, KeyError):
        return None
    rows = []
    for target in sorted(targets, key=lambda t: ((t.get("labels") or {}).get("job", ""), t.get("scrapeUrl", ""))):
        labels = target.get("labels") or {}
        rows.append({"job": labels.get("job", ""), "member": labels.get("orch_name", "-"), "role": labels.get("orch_role", "-"),
                     "target": target.get("scrapeUrl", ""), "health": target.get("health", ""),
                     "last error": target.get("lastError") or "-"})
    return rows or None
