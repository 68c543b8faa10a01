"""The report's figures as specs: plain dicts out of documents, drawn into PNGs by ``orch.plots``.

A spec is ``{"kind": "lines" | "cdf", "title", "panels": [panel]}``; a panel is
``{"title", "xlabel", "ylabel", "series": [...]}`` (``lines`` panels also
``xticks``, and ``xscale`` when it is fixed). A ``lines`` series is
``{"label", "x", "y", "color": index, "style": "-" | "--" | ":"}``; a ``cdf``
series holds raw ``samples`` or summary ``quantiles`` (``[(percent, value)]``).
Being data, what gets plotted is testable without matplotlib.
"""
import re

from orch.metrics import TITLES
from orch.report.documents import by_client, common_axes, group_label, latencies, number, throughputs, value_text
from orch.results import LATENCY_POINTS

__all__ = ("sweep_figure", "llm_distribution_figure", "metrics_figure", "figures_of", "slug")

# line styles say which percentile, colours say which group: a reader tells p50 from p99 at a glance
PERCENTILE_STYLES = {"p50": "-", "p95": "--", "p99": ":"}
MAX_SERIES_PER_PANEL = 12
DISTRIBUTION_QUANTILES = (("min", 0), ("p50", 50), ("p90", 90), ("p95", 95), ("p99", 99), ("p999", 99.9), ("max", 100))


def _x_axis(documents, name):
    """(positions by document, tick labels or None, label): numeric parameters on a numeric axis."""
    if name is None:
        return [0] * len(documents), ["all"], "(one point per run)"
    values = [d.get("parameters", {}).get(name) for d in documents]
    if all(number(v) for v in values):
        return values, None, name
    ticks = sorted({value_text(v) for v in values})
    return [ticks.index(value_text(v)) for v in values], ticks, name


def sweep_figure(title, runs_docs, axes):
    """Throughput and latency percentiles against the first swept parameter.

    ``runs_docs``: ``[(run label or None, documents)]``; one line per (run, value of the other
    swept parameters). Returns None when the documents carry no figures at all.
    """
    x_name = axes[0] if axes else None
    rest = axes[1:]
    everything = [d for _, docs in runs_docs for d in docs]
    positions, ticks, x_label = _x_axis(everything, x_name)
    where = {id(d): p for d, p in zip(everything, positions)}
    groups = []  # (label, documents sorted along x)
    for run_label, docs in runs_docs:
        keyed = {}
        for d in docs:
            keyed.setdefault(group_label(d, rest), []).append(d)
        for label in sorted(keyed):
            name = " ".join(part for part in (run_label, label) if part) or "all"
            groups.append((name, sorted(keyed[label], key=lambda d: where[id(d)])))
    panels = []
    for metric in sorted({m for d in everything for m in throughputs(d)}):
        series = []
        for index, (label, docs) in enumerate(groups):
            points = [(where[id(d)], throughputs(d).get(metric)) for d in docs if throughputs(d).get(metric) is not None]
            if points:
                series.append({"label": label, "x": [p[0] for p in points], "y": [p[1] for p in points],
                               "color": index, "style": "-"})
        panels.append({"title": "throughput: %s" % metric, "xlabel": x_label, "ylabel": metric, "xticks": ticks,
                       "series": series[:MAX_SERIES_PER_PANEL]})
    for metric in sorted({m for d in everything for m in latencies(d)}):
        series = []
        for index, (label, docs) in enumerate(groups):
            for point in LATENCY_POINTS:
                pts = [(where[id(d)], latencies(d).get(metric, {}).get(point)) for d in docs]
                pts = [p for p in pts if number(p[1])]
                if pts:
                    series.append({"label": "%s %s" % (label, point) if len(groups) > 1 else point,
                                   "x": [p[0] for p in pts], "y": [p[1] for p in pts],
                                   "color": index, "style": PERCENTILE_STYLES[point]})
        panels.append({"title": "latency: %s (p50/p95/p99)" % metric, "xlabel": x_label, "ylabel": "ms",
                       "xticks": ticks, "series": series[:MAX_SERIES_PER_PANEL * 3]})
    panels = [p for p in panels if p["series"]]
    if not panels:
        return None
    return {"kind": "lines", "title": title, "panels": panels}


def _request_samples(lines):
    """TTFT and chunk gaps (ICL) of the measured, successful requests of a JSONL file, in ms."""
    ttft, icl = [], []
    for line in lines or ():
        if not isinstance(line, dict) or line.get("warmup") or line.get("status") != "ok":
            continue
        if number(line.get("t_first_token")) and number(line.get("t_send")):
            ttft.append(line["t_first_token"] - line["t_send"])
        offsets = [o for o in line.get("chunk_offsets_ms") or () if number(o)]
        icl.extend(b - a for a, b in zip(offsets, offsets[1:]))
    return ttft, icl


def llm_distribution_figure(title, labelled):
    """TTFT and inter-token latency as CDFs, one curve per sweep point (and run).

    ``labelled``: ``[(label, document, JSONL records or None)]``. Raw samples give an empirical
    CDF; without them the document's own summary quantiles are drawn as points, and the
    panel says so.
    """
    panels = []
    for metric, title_text, index in (("ttft_ms", "TTFT", 0), ("icl_ms", "inter-token latency (every chunk gap)", 1)):
        series = []
        sources = set()
        for color, (label, document, lines) in enumerate(labelled):
            samples = _request_samples(lines)[index] if lines else []
            if samples:
                sources.add("per-request JSONL")
                series.append({"label": label, "samples": sorted(samples), "color": color})
                continue
            stats = document.get("latency", {}).get(metric)
            if isinstance(stats, dict):
                quantiles = [(q, stats[k]) for k, q in DISTRIBUTION_QUANTILES if number(stats.get(k))]
                if quantiles:
                    sources.add("summary percentiles")
                    series.append({"label": label + " (summary)", "quantiles": quantiles, "color": color})
        if series:
            panels.append({"title": "%s, CDF" % title_text,
                           "xlabel": "ms (from %s)" % " and ".join(sorted(sources)), "ylabel": "fraction of requests" if index == 0 else "fraction of gaps",
                           "series": series[:MAX_SERIES_PER_PANEL]})
    if not panels:
        return None
    return {"kind": "cdf", "title": title, "panels": panels}


def _series_label(metric):
    """``redis (service) 10.0.0.3:9100`` for a member's exporter; ``name{labels}`` for anything else."""
    labels = {k: v for k, v in sorted(metric.items()) if k != "__name__"}
    if "orch_name" in labels:
        role = " (%s)" % labels["orch_role"] if labels.get("orch_role") else ""
        return "%s%s%s" % (labels["orch_name"], role, " " + labels["instance"] if labels.get("instance") else "")
    name = metric.get("__name__", "")
    inner = ",".join("%s=%s" % kv for kv in labels.items())
    return "%s{%s}" % (name, inner) if inner else name or "series"


def metrics_figure(title, metrics):
    """Prometheus range-query answers (``{"data": {"result": [{"metric", "values"}]}}``), one panel per file.

    Time is seconds since the earliest sample of all files, so the panels share an origin.
    """
    parsed = {}
    for name, answer in sorted(metrics.items()):
        result = (answer or {}).get("data", {}).get("result") if isinstance(answer, dict) else None
        if not isinstance(result, list):
            continue
        series = []
        for item in result:
            try:
                points = [(float(t), float(v)) for t, v in item.get("values") or ()]
            except (TypeError, ValueError):
                continue
            if points:
                series.append((_series_label(item.get("metric") or {}), points))
        if series:
            parsed[name] = sorted(series)
    if not parsed:
        return None
    origin = min(t for series in parsed.values() for _, points in series for t, _ in points)
    panels = []
    for name, series in parsed.items():
        stem = re.sub(r"\.json$", "", name)
        panel_title, unit = TITLES.get(stem, (stem, stem))
        panels.append({"title": panel_title + (" (first %d of %d series)" % (MAX_SERIES_PER_PANEL, len(series))
                                         if len(series) > MAX_SERIES_PER_PANEL else ""),
                       "xlabel": "s since the first sample", "ylabel": unit, "xticks": None, "xscale": "linear",
                       "series": [{"label": label, "x": [t - origin for t, _ in points], "y": [v for _, v in points],
                                   "color": i, "style": "-", "markers": False}
                                  for i, (label, points) in enumerate(series[:MAX_SERIES_PER_PANEL])]})
    return {"kind": "lines", "title": title, "panels": panels}


def figures_of(runs):
    """Every figure of a report on ``runs`` (one run, or two compared), as ``[(name, caption, spec)]``."""
    figures = []
    labels = [run["label"] if len(runs) > 1 else None for run in runs]
    clients = sorted({c for run in runs for c in by_client(run["documents"])})
    for client in clients:
        per_run = [(label, by_client(run["documents"]).get(client, [])) for label, run in zip(labels, runs)]
        per_run = [(label, docs) for label, docs in per_run if docs]
        axes = common_axes([docs for _, docs in per_run])
        spec = sweep_figure("%s: throughput and latency" % client, per_run, axes)
        if spec:
            caption = "%s: throughput and latency percentiles (p50 solid, p95 dashed, p99 dotted) against %s" % (
                client, axes[0] if axes else "the run (no swept parameter)")
            figures.append(("%s-sweep" % slug(client), caption, spec))
        labelled = []
        for (label, docs), run in zip(per_run, [r for r in runs if by_client(r["documents"]).get(client)]):
            for document in docs:
                if "ttft_ms" in document.get("latency", {}):
                    point = group_label(document, axes) if axes else "all"
                    name = " ".join(part for part in (label, point) if part)
                    index = next(i for i, d in enumerate(run["documents"]) if d is document)
                    labelled.append((name, document, run.get("requests", {}).get(index)))
        spec = llm_distribution_figure("%s: TTFT and inter-token latency" % client, labelled)
        if spec:
            figures.append(("%s-llm-distributions" % slug(client),
                            "%s: TTFT and inter-token latency distributions (CDF)" % client, spec))
    for label, run in zip(labels, runs):
        spec = metrics_figure("resource use%s" % (" (%s)" % label if label else ""), run.get("metrics") or {})
        if spec:
            figures.append(("resources%s" % ("-" + slug(label) if label else ""),
                            "resource use over time%s (Prometheus range queries in metrics/)" % (
                                " for " + label if label else ""), spec))
    return figures


def slug(text):
    """A figure's file name out of a client's name or a run's label.

    >>> slug("redis_benchmark"), slug("B"), slug("--")
    ('redis-benchmark', 'b', 'x')
    """
    return re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-") or "x"
