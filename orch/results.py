"""One results format for every client: ``orch.result/1``, written atomically.

A results document is a plain dict (JSON), built by the load generators in
``orch.clients`` and read by ``orch results``. Summaries are always computed
from the raw samples here, never from other summaries (MEASUREMENT.md).

Layout (fields a client has no use for stay null or empty)::

    {"schema": "orch.result/1",
     "run": {"id", "job_name", "client", "started_at", "ended_at", "orch_version", "command", "partial"},
     "target": {"kind", "url", "host", "port"},
     "parameters": {...},            # the combination this task ran
     "environment": {"node", "slurm_job_id", "array_task", "tool", "tool_version"},
     "window": {"start_epoch", "end_epoch", "duration_s", "definition"},
     "counts": {"sent", "completed", "failed", "timeouts", "errors": {message: n}},
     "throughput": {"requests_per_s", ...kind's own rates},
     "latency": {"<metric>_ms": summary, ...},
     "domain": {...kind's own figures: recall_at_k, tests, ...},
     "raw": {"native_output": [...], "requests": "file.jsonl" | null}}
"""
import json
import math
import time

__all__ = (
    "SCHEMA", "summary", "new_document", "read_document", "percentile", "now_iso",
    "flatten", "table_text", "csv_text", "cell_text", "columns_of",
)

SCHEMA = "orch.result/1"
PERCENTILES = (50, 90, 95, 99, 99.9)


def percentile(sorted_values, q):
    """The q-th percentile of sorted values, linear between closest ranks (numpy's default).

    >>> percentile([1, 2, 3, 4], 50)
    2.5
    """
    if not sorted_values:
        return None
    rank = (len(sorted_values) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (rank - low)


def summary(samples):
    """``{n, mean, std, min, p50, p90, p95, p99, p999, max, method}`` of raw samples (None when empty).

    >>> summary([1.0, 2.0, 3.0])["p50"]
    2.0
    """
    values = sorted(float(v) for v in samples)
    if not values:
        return None
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    result = {"n": n, "mean": mean, "std": std, "min": values[0], "max": values[-1], "method": "linear"}
    for q in PERCENTILES:
        result["p%s" % str(q).replace(".", "")] = percentile(values, q)
    return result


def now_iso(epoch):
    """An epoch second as the documents write times: ISO 8601, UTC.

    >>> now_iso(0)
    '1970-01-01T00:00:00Z'
    """
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def new_document(client, parameters, target, *, job, started_at, tool="orch", tool_version=None, command=None):
    """A results document with the run's identity and environment filled in.

    + job: the job it ran in (``orch.clients.node.this_job``: id, job_name, node, slurm_job_id, array_task)
    + started_at: epoch seconds
    """
    from orch import __version__

    return {
        "schema": SCHEMA,
        "run": {
            "id": job["id"],
            "job_name": job["job_name"],
            "client": client,
            "started_at": now_iso(started_at),
            "ended_at": None,
            "orch_version": __version__,
            "command": list(command or ()),
            "partial": True,
        },
        "target": dict(target),
        "parameters": dict(parameters),
        "environment": {
            "node": job["node"],
            "slurm_job_id": job["slurm_job_id"],
            "array_task": job["array_task"],
            "tool": tool,
            "tool_version": tool_version,
        },
        "window": {"start_epoch": None, "end_epoch": None, "duration_s": None, "definition": "first_send..last_complete"},
        "counts": {"sent": 0, "completed": 0, "failed": 0, "timeouts": 0, "errors": {}},
        "throughput": {},
        "latency": {},
        "domain": {},
        "raw": {"native_output": [], "requests": None},
    }


def read_document(path):
    with open(path, encoding="utf-8") as handle:
        document = json.load(handle)
    if document.get("schema") != SCHEMA:
        raise ValueError("%s: not an %s document" % (path, SCHEMA))
    return document


LATENCY_POINTS = ("p50", "p95", "p99")


def flatten(document):
    """One row of a results table: the document's figures under flat, readable column names.

    Parameters first, then throughput, latency percentiles, counts, and the
    kind's own scalar figures (one level of nesting, as ``SET.requests_per_s``).
    """
    run = document.get("run", {})
    row = {
        "id": run.get("id"),
        "client": run.get("client"),
        "task": document.get("environment", {}).get("array_task") or "0",
    }
    for name, value in sorted(document.get("parameters", {}).items()):
        row[name] = value
    for name, value in sorted(document.get("throughput", {}).items()):
        if isinstance(value, (int, float)):
            row[name] = value
    for metric, stats in sorted(document.get("latency", {}).items()):
        if isinstance(stats, dict):
            for point in LATENCY_POINTS:
                if stats.get(point) is not None:
                    row["%s.%s" % (metric, point)] = stats[point]
    counts = document.get("counts", {})
    row["completed"] = counts.get("completed")
    row["failed"] = counts.get("failed")
    for name, value in sorted(document.get("domain", {}).items()):
        if isinstance(value, (int, float, str)) and not isinstance(value, bool):
            row[name] = value
        elif isinstance(value, dict):
            for inner, figures in sorted(value.items()):
                if isinstance(figures, dict):
                    for key, figure in sorted(figures.items()):
                        if isinstance(figure, (int, float)) and not isinstance(figure, bool):
                            row["%s.%s" % (inner, key)] = figure
    row["partial"] = bool(run.get("partial"))
    return row


def columns_of(rows):
    columns = []
    for row in rows:
        for name in row:
            if name not in columns:
                columns.append(name)
    return columns


def cell_text(value):
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return "%.4g" % value if abs(value) < 1e5 else "%.0f" % value
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


def table_text(rows):
    """Rows as an aligned text table (columns: the union of the rows' names, in first-seen order)."""
    if not rows:
        return ""
    columns = columns_of(rows)
    cells = [columns] + [[cell_text(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in cells) + "\n"


def csv_text(rows):
    """Rows as CSV with a header line."""
    import csv
    import io

    out = io.StringIO()
    columns = columns_of(rows)
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else cell_text(row.get(c)) for c in columns])
    return out.getvalue()
