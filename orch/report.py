"""``orch report``: a run's results documents as a Markdown and a self-contained HTML report.

documents ──build──▶ sections (tables, figure specs, text) ──markdown / html──▶ text
                                 figure specs ──orch.plots.render_png──▶ PNG bytes

Everything down to ``html`` is pure: a figure is a plain dict (panels of
series), so what gets plotted is testable without matplotlib, and the same
inputs give the same text byte for byte (no clock is read: the only times in a
report are those in the data). ``write_report`` at the bottom is the one place
that reads the run directories (locally or on the login node, through
``orch.slurm``) and writes files.

A run's input, once gathered (``gather``), is a dict::

    {"label", "record", "recipe": text | None, "documents": [...],
     "requests": {document index: [JSONL records]},   # raw.requests, when readable
     "metrics": {file name: Prometheus range-query JSON}}
"""
import base64
import html as html_lib
import json
import re

from orch.metrics import TARGETS_FILE, TITLES
from orch.results import LATENCY_POINTS, cell_text, columns_of, flatten

__all__ = (
    "build", "markdown", "html", "write_report", "gather", "swept_names", "figures_of", "comparison_rows",
    "throughputs", "latencies",
)

# line styles say which percentile, colours say which group: a reader tells p50 from p99 at a glance
PERCENTILE_STYLES = {"p50": "-", "p95": "--", "p99": ":"}
MAX_SERIES_PER_PANEL = 12
DISTRIBUTION_QUANTILES = (("min", 0), ("p50", 50), ("p90", 90), ("p95", 95), ("p99", 99), ("p999", 99.9), ("max", 100))


# ---------------------------------------------------------------- figures out of documents

def throughputs(document):
    """``{name: rate}``: the document's throughput figures and, per test, the kind's own (redis' SET, GET)."""
    found = {name: value for name, value in sorted(document.get("throughput", {}).items()) if _number(value)}
    for test, row in sorted((document.get("domain", {}).get("tests") or {}).items()):
        if isinstance(row, dict) and _number(row.get("requests_per_s")):
            found["%s.requests_per_s" % test] = row["requests_per_s"]
    return found


def latencies(document):
    """``{name: summary}`` of every latency with percentiles: ``latency.*_ms``, and per test ``latency_ms``."""
    found = {}
    for name, stats in sorted(document.get("latency", {}).items()):
        if isinstance(stats, dict) and any(_number(stats.get(p)) for p in LATENCY_POINTS):
            found[name] = stats
    for test, row in sorted((document.get("domain", {}).get("tests") or {}).items()):
        stats = row.get("latency_ms") if isinstance(row, dict) else None
        if isinstance(stats, dict) and any(_number(stats.get(p)) for p in LATENCY_POINTS):
            found["%s_ms" % test] = stats
    return found


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _key(value):
    # parameters may be lists (redis' tests): compare them by their JSON text
    return json.dumps(value, sort_keys=True)


def swept_names(documents):
    """The parameters whose value differs between the documents, the x axis first.

    The x axis is the one with the most values (numeric ones before others, then by name): a
    sweep's second parameter becomes one line per value.

    >>> docs = [{"parameters": {"clients": c, "pipeline": p, "tests": ["set"]}} for c in (1, 10, 50) for p in (1, 16)]
    >>> swept_names(docs)
    ('clients', 'pipeline')
    """
    names = sorted({name for d in documents for name in d.get("parameters", {})})
    values = {n: {_key(d.get("parameters", {}).get(n)) for d in documents} for n in names}
    varying = [n for n in names if len(values[n]) > 1]
    numeric = {n: all(_number(d.get("parameters", {}).get(n)) for d in documents) for n in varying}
    return tuple(sorted(varying, key=lambda n: (-len(values[n]), not numeric[n], n)))


def _value_text(value):
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


def _group_label(document, names):
    return ", ".join("%s=%s" % (n, _value_text(document.get("parameters", {}).get(n))) for n in names)


def _x_axis(documents, name):
    """(positions by document, tick labels or None, label): numeric parameters on a numeric axis."""
    if name is None:
        return [0] * len(documents), ["all"], "(one point per run)"
    values = [d.get("parameters", {}).get(name) for d in documents]
    if all(_number(v) for v in values):
        return values, None, name
    ticks = sorted({_value_text(v) for v in values})
    return [ticks.index(_value_text(v)) for v in values], ticks, name


def _by_client(documents):
    clients = {}
    for document in documents:
        clients.setdefault(document.get("run", {}).get("client") or "client", []).append(document)
    return clients


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
            keyed.setdefault(_group_label(d, rest), []).append(d)
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
                pts = [p for p in pts if _number(p[1])]
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
        if _number(line.get("t_first_token")) and _number(line.get("t_send")):
            ttft.append(line["t_first_token"] - line["t_send"])
        offsets = [o for o in line.get("chunk_offsets_ms") or () if _number(o)]
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
                quantiles = [(q, stats[k]) for k, q in DISTRIBUTION_QUANTILES if _number(stats.get(k))]
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
    clients = sorted({c for run in runs for c in _by_client(run["documents"])})
    for client in clients:
        per_run = [(label, _by_client(run["documents"]).get(client, [])) for label, run in zip(labels, runs)]
        per_run = [(label, docs) for label, docs in per_run if docs]
        axes = _common_axes([docs for _, docs in per_run])
        spec = sweep_figure("%s: throughput and latency" % client, per_run, axes)
        if spec:
            caption = "%s: throughput and latency percentiles (p50 solid, p95 dashed, p99 dotted) against %s" % (
                client, axes[0] if axes else "the run (no swept parameter)")
            figures.append(("%s-sweep" % _slug(client), caption, spec))
        labelled = []
        for (label, docs), run in zip(per_run, [r for r in runs if _by_client(r["documents"]).get(client)]):
            for document in docs:
                if "ttft_ms" in document.get("latency", {}):
                    point = _group_label(document, axes) if axes else "all"
                    name = " ".join(part for part in (label, point) if part)
                    index = next(i for i, d in enumerate(run["documents"]) if d is document)
                    labelled.append((name, document, run.get("requests", {}).get(index)))
        spec = llm_distribution_figure("%s: TTFT and inter-token latency" % client, labelled)
        if spec:
            figures.append(("%s-llm-distributions" % _slug(client),
                            "%s: TTFT and inter-token latency distributions (CDF)" % client, spec))
    for label, run in zip(labels, runs):
        spec = metrics_figure("resource use%s" % (" (%s)" % label if label else ""), run.get("metrics") or {})
        if spec:
            figures.append(("resources%s" % ("-" + _slug(label) if label else ""),
                            "resource use over time%s (Prometheus range queries in metrics/)" % (
                                " for " + label if label else ""), spec))
    return figures


def _common_axes(doc_lists):
    """The swept parameters of runs compared: those that vary within any run, in the first run's order."""
    order = []
    for docs in doc_lists:
        for name in swept_names(docs):
            if name not in order:
                order.append(name)
    return tuple(order)


def _slug(text):
    return re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-") or "x"


# ---------------------------------------------------------------- comparison

def _key_figures(document):
    figures = dict(throughputs(document))
    for metric, stats in latencies(document).items():
        for point in ("p50", "p99"):
            if _number(stats.get(point)):
                figures["%s.%s" % (metric, point)] = stats[point]
    return figures


def comparison_rows(docs_a, docs_b):
    """One row per (matching parameter combination, key figure): A, B and B/A.

    Combinations match on the parameters swept in either run; a combination only one run
    has is listed with the other's figures empty, so nothing silently disappears.
    """
    axes = _common_axes([docs_a, docs_b])

    def combination(document):
        return tuple(_key(document.get("parameters", {}).get(n)) for n in axes)

    a = {combination(d): d for d in docs_a}
    b = {combination(d): d for d in docs_b}
    rows = []
    for key in sorted(set(a) | set(b), key=lambda k: tuple(_sort_key(json.loads(v)) for v in k)):
        first = a.get(key) or b.get(key)
        fa = _key_figures(a[key]) if key in a else {}
        fb = _key_figures(b[key]) if key in b else {}
        for figure in sorted(set(fa) | set(fb)):
            row = {n: first.get("parameters", {}).get(n) for n in axes}
            va, vb = fa.get(figure), fb.get(figure)
            row.update({"figure": figure, "A": va, "B": vb,
                        "B/A": (vb / va) if _number(va) and _number(vb) and va else None})
            rows.append(row)
    return rows


# ---------------------------------------------------------------- sections

TEXT_CELL_LIMIT = 40


def result_rows(documents):
    """``orch results``' rows (one per sweep point, in sweep order) for a report's table.

    Added: per-test latency percentiles, which ``flatten`` leaves nested. Left out: columns
    empty in every row and long prose (definitions), which belong to the documents, not a table.
    """
    axes = swept_names(documents)
    ordered = sorted(documents, key=lambda d: tuple(_sort_key(d.get("parameters", {}).get(n)) for n in axes))
    rows = []
    for document in ordered:
        row = flatten(document)
        partial = row.pop("partial")
        for metric, stats in latencies(document).items():
            for point in LATENCY_POINTS:
                if _number(stats.get(point)):
                    row.setdefault("%s.%s" % (metric, point), stats[point])
        row["partial"] = partial
        rows.append(row)
    columns = columns_of(rows)
    keep = [c for c in columns
            if any(row.get(c) is not None for row in rows)
            and not any(isinstance(row.get(c), str) and len(row[c]) > TEXT_CELL_LIMIT for row in rows)]
    return [{c: row.get(c) for c in keep} for row in rows]


def _sort_key(value):
    return (0, value, "") if _number(value) else (1, 0, _key(value))


def _environment_rows(run):
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


def partial_note(run):
    """Why the run's figures are partial, or None: a partial document, or a run that did not complete."""
    partial = [d for d in run["documents"] if (d.get("run") or {}).get("partial")]
    reasons = []
    if partial:
        reasons.append("%d of %d documents are partial (the client was stopped before it finished)"
                       % (len(partial), len(run["documents"])))
    state = run["record"].get("state")
    if state and state != "completed":
        reasons.append("the run is %s%s" % (state, (": " + run["record"]["reason"]) if run["record"].get("reason") else ""))
    return "; ".join(reasons) or None


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


def build(runs):
    """The report's sections: ``("h", level, text)``, ``("p", text)``, ``("note", text)``,
    ``("table", rows)``, ``("figure", name, caption)``, ``("code", text)``; and the figure specs."""
    figures = figures_of(runs)
    by_name = {name: (caption, spec) for name, caption, spec in figures}
    out = []
    if len(runs) == 1:
        run = runs[0]
        out.append(("h", 1, "orch report: %s" % (run["record"].get("job_name") or run["record"].get("id"))))
    else:
        out.append(("h", 1, "orch report: %s" % " vs ".join(
            "%s %s" % (r["label"], r["record"].get("job_name") or r["record"].get("id")) for r in runs)))
    for run in runs:
        note = partial_note(run)
        if note:
            out.append(("note", "Partial results (%s): %s." % (run["record"].get("id"), note)))
    if len(runs) == 2:
        out.append(("h", 2, "Comparison (B/A)"))
        out.append(("p", "A = %s, B = %s. Key figures per matching parameter combination; B/A > 1 means B is "
                         "higher (better for throughput, worse for latency)." % (
                             runs[0]["record"].get("id"), runs[1]["record"].get("id"))))
        a_clients, b_clients = _by_client(runs[0]["documents"]), _by_client(runs[1]["documents"])
        for client in sorted(set(a_clients) | set(b_clients)):
            out.append(("h", 3, client))
            out.append(("table", comparison_rows(a_clients.get(client, []), b_clients.get(client, []))))
    for run in runs:
        prefix = "%s: " % run["label"] if len(runs) > 1 else ""
        out.append(("h", 2, "%sResults (%s)" % (prefix, run["record"].get("id"))))
        for client, docs in sorted(_by_client(run["documents"]).items()):
            axes = swept_names(docs)
            out.append(("h", 3, "%s (%d point%s%s)" % (client, len(docs), "" if len(docs) == 1 else "s",
                                                       "; swept: " + ", ".join(axes) if axes else "")))
            out.append(("table", result_rows(docs)))
    out.append(("h", 2, "Plots"))
    for name, caption, _ in figures:
        out.append(("figure", name, caption))
    for run in runs:
        prefix = "%s: " % run["label"] if len(runs) > 1 else ""
        if not run.get("metrics"):
            out.append(("p", "%sNo resource metrics: the run directory has no Prometheus range-query JSON "
                             "(metrics/*.json), so there is no resource-use plot." % prefix))
        elif not any(n.startswith("resources") and (len(runs) == 1 or n.endswith(_slug(run["label"]))) for n in by_name):
            out.append(("p", "%sThe metrics/*.json files hold no range-query series (%s); no resource-use plot."
                        % (prefix, ", ".join(sorted(run["metrics"])))))
    for run in runs:
        prefix = "%s: " % run["label"] if len(runs) > 1 else ""
        if run.get("members"):
            out.append(("h", 2, "%sJobs of the experiment (%s)" % (prefix, run["record"].get("id"))))
            out.append(("table", member_rows(run["members"])))
        targets = target_rows((run.get("metrics") or {}).get(TARGETS_FILE))
        if targets:
            out.append(("h", 2, "%sScrape targets (%s)" % (prefix, run["record"].get("id"))))
            out.append(("p", "What the experiment's Prometheus scraped, as it saw them when the clients had ended."))
            out.append(("table", targets))
    for run in runs:
        prefix = "%s: " % run["label"] if len(runs) > 1 else ""
        out.append(("h", 2, "%sEnvironment (%s)" % (prefix, run["record"].get("id"))))
        out.append(("table", _environment_rows(run)))
        out.append(("h", 3, "%sRecipe" % prefix))
        if run.get("recipe"):
            out.append(("code", run["recipe"]))
        else:
            out.append(("p", "The registry holds no recipe.yaml for this run."))
    return out, {name: spec for name, (caption, spec) in by_name.items()}

# ---------------------------------------------------------------- text


def _fence(text):
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def markdown(sections, figure_dir="figures"):
    """The report as Markdown; figures are PNG files in ``figure_dir`` (relative to the report)."""
    lines = []
    for section in sections:
        kind = section[0]
        if kind == "h":
            lines += ["#" * section[1] + " " + section[2], ""]
        elif kind == "p":
            lines += [section[1], ""]
        elif kind == "note":
            lines += ["> **%s**" % section[1], ""]
        elif kind == "table":
            rows = section[1]
            if not rows:
                lines += ["(no rows)", ""]
                continue
            columns = columns_of(rows)
            escape = lambda text: text.replace("|", "\\|")  # noqa: E731
            lines.append("| " + " | ".join(escape(c) for c in columns) + " |")
            lines.append("|" + "|".join("---" for _ in columns) + "|")
            for row in rows:
                lines.append("| " + " | ".join(escape(cell_text(row.get(c))) for c in columns) + " |")
            lines.append("")
        elif kind == "figure":
            lines += ["![%s](%s/%s.png)" % (section[2], figure_dir, section[1]), "", "*%s*" % section[2], ""]
        elif kind == "code":
            fence = _fence(section[1])
            lines += [fence + "yaml", section[1].rstrip("\n"), fence, ""]
    return "\n".join(lines).rstrip("\n") + "\n"


STYLE = """
body { font-family: sans-serif; margin: 2em; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.5em; text-align: right; }
th { background: #f0f0f0; }
td:first-child, th:first-child { text-align: left; }
.note { background: #fff4d6; border-left: 4px solid #e0a800; padding: 0.5em 1em; }
figure { margin: 1em 0 2em; }
figure img { max-width: 100%; border: 1px solid #eee; }
.wide { overflow-x: auto; }
pre { background: #f6f6f6; padding: 1em; overflow-x: auto; }
"""


def html(sections, images):
    """The report as one HTML file: styles inline, figures as base64 PNG (``images``: name -> bytes)."""
    esc = lambda text: html_lib.escape(str(text), quote=True)  # noqa: E731
    title = next((s[2] for s in sections if s[0] == "h"), "orch report")
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             "<title>%s</title>" % esc(title), "<style>%s</style>" % STYLE, "</head><body>"]
    for section in sections:
        kind = section[0]
        if kind == "h":
            parts.append("<h%d>%s</h%d>" % (section[1], esc(section[2]), section[1]))
        elif kind == "p":
            parts.append("<p>%s</p>" % esc(section[1]))
        elif kind == "note":
            parts.append('<p class="note"><strong>%s</strong></p>' % esc(section[1]))
        elif kind == "table":
            rows = section[1]
            if not rows:
                parts.append("<p>(no rows)</p>")
                continue
            columns = columns_of(rows)
            parts.append('<div class="wide"><table><thead><tr>%s</tr></thead><tbody>'
                         % "".join("<th>%s</th>" % esc(c) for c in columns))
            for row in rows:
                parts.append("<tr>%s</tr>" % "".join("<td>%s</td>" % esc(cell_text(row.get(c))) for c in columns))
            parts.append("</tbody></table></div>")
        elif kind == "figure":
            data = base64.b64encode(images[section[1]]).decode("ascii")
            parts.append('<figure id="%s"><img alt="%s" src="data:image/png;base64,%s"><figcaption>%s</figcaption></figure>'
                         % (esc(section[1]), esc(section[2]), data, esc(section[2])))
        elif kind == "code":
            parts.append("<pre><code>%s</code></pre>" % esc(section[1]))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


# ---------------------------------------------------------------- effects: reading runs, writing the report

def gather(record, documents, label="A", *, recipe=None, runner=None):
    """A run's report input: its documents plus what the run directory holds beside them.

    Reads (locally, or on the login node for a ``--remote`` run) the per-request JSONL each
    document names in ``raw.requests`` and ``metrics/*.json``; the recipe comes from the
    registry's ``recipe.yaml`` unless given. Unreadable or malformed files are left out,
    never guessed at.
    """
    import os

    from orch import registry, slurm

    kwargs = {"runner": runner} if runner is not None else {}
    remote = slurm.parse_remote(record["remote"]) if record.get("remote") else None
    run_dir = record["run_dir"]
    requests = {}
    for index, document in enumerate(documents):
        name = (document.get("raw") or {}).get("requests")
        if not name or "/" in name or name.startswith("."):
            continue
        text = slurm.read_text(run_dir + "/results/" + name, remote=remote, **kwargs)
        if text:
            lines = []
            for line in text.splitlines():
                try:
                    lines.append(json.loads(line))
                except ValueError:
                    continue  # a line cut short by a stopped client
            requests[index] = lines
    metrics = {}
    for name in slurm.list_dir(run_dir + "/metrics", remote=remote, **kwargs):
        if name.endswith(".json") and not name.startswith("."):
            text = slurm.read_text(run_dir + "/metrics/" + name, remote=remote, **kwargs)
            try:
                metrics[name] = json.loads(text) if text else None
            except ValueError:
                metrics[name] = None
    if recipe is None:
        name = "experiment.yaml" if record.get("role") == "experiment" else "recipe.yaml"
        recipe = slurm.read_text(os.path.join(registry.run_dir(record["id"]), name))
    members = []
    if record.get("role") == "experiment":
        from orch.runs import members_of

        members = members_of(record)
    return {"label": label, "record": record, "recipe": recipe, "documents": list(documents),
            "requests": requests, "metrics": metrics, "members": members}


def render(runs):
    """(markdown text, html text, {figure name: PNG bytes}) for gathered runs: no files touched."""
    sections, specs = build(runs)
    from orch import plots  # matplotlib only here: never on the render path

    images = {name: plots.render_png(spec) for name, spec in sorted(specs.items())}
    return markdown(sections), html(sections, images), images


def write_report(records_with_documents, out_dir, *, recipes=None, runner=None):
    """Write ``report.md``, ``report.html`` and ``figures/*.png`` for one run or two compared; return the paths.

    ``records_with_documents``: ``[(run record, [orch.result/1 documents])]``, one or two of them;
    ``recipes``: optional ``{run id: recipe text}`` (default: the registry's ``recipe.yaml``).
    """
    import os

    if len(records_with_documents) not in (1, 2):
        raise ValueError("a report covers one run, or two compared")
    runs = [gather(record, documents, label, recipe=(recipes or {}).get(record["id"]), runner=runner)
            for (record, documents), label in zip(records_with_documents, ("A", "B"))]
    md_text, html_text, images = render(runs)
    figure_dir = os.path.join(out_dir, "figures")
    os.makedirs(figure_dir, exist_ok=True)
    written = []
    for name, data in sorted(images.items()):
        path = os.path.join(figure_dir, name + ".png")
        with open(path, "wb") as handle:
            handle.write(data)
        written.append(path)
    for name, text in (("report.md", md_text), ("report.html", html_text)):
        path = os.path.join(out_dir, name)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
        written.append(path)
    return written
