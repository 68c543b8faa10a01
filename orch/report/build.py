"""The report's content: gathered runs made into sections (headings, text, tables, figures) and figure specs.

What the report says and in which order lives here; how it looks lives in
``markdown`` and ``html``, which read the same sections. Pure: no clock is read,
so the only times in a report are those in the data.
"""
from orch.metrics import TARGETS_FILE
from orch.report.documents import by_client, swept_names
from orch.report.figures import figures_of, slug
from orch.report.tables import comparison_rows, environment_rows, member_rows, result_rows, target_rows

__all__ = ("build", "partial_note")


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


def build(runs):
    """The report's sections: ``("h", level, text)``, ``("p", text)``, ``("note", text)``,
    ``("table", rows)``, ``("figure", name, caption)``, ``("code", text)``; and the figure specs.

    ``runs``: one gathered run (``orch.report.gather``), or two compared (labels A and B).
    """
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
        a_clients, b_clients = by_client(runs[0]["documents"]), by_client(runs[1]["documents"])
        for client in sorted(set(a_clients) | set(b_clients)):
            out.append(("h", 3, client))
            out.append(("table", comparison_rows(a_clients.get(client, []), b_clients.get(client, []))))
    for run in runs:
        prefix = "%s: " % run["label"] if len(runs) > 1 else ""
        out.append(("h", 2, "%sResults (%s)" % (prefix, run["record"].get("id"))))
        for client, docs in sorted(by_client(run["documents"]).items()):
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
        elif not any(n.startswith("resources") and (len(runs) == 1 or n.endswith(slug(run["label"]))) for n in by_name):
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
        out.append(("table", environment_rows(run)))
        out.append(("h", 3, "%sRecipe" % prefix))
        if run.get("recipe"):
            out.append(("code", run["recipe"]))
        else:
            out.append(("p", "The registry holds no recipe.yaml for this run."))
    return out, {name: spec for name, (caption, spec) in by_name.items()}
