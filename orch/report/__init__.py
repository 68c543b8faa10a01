"""``orch report``: a run's results documents as a Markdown and a self-contained HTML report.

run directory ──write (readers)──▶ gather ──▶ gathered runs ──build──▶ sections (tables, figure specs, text)
sections ──markdown / html──▶ text        figure specs ──orch.plots.render_png──▶ PNG bytes
report_files: {relative path: bytes or text} ──write_report──▶ files

One module per step:

- ``documents``: what a results document measured, which parameters a set sweeps
- ``figures``: figure specs (plain dicts) out of documents; ``tables``: rows
- ``build``: gathered runs to sections and figure specs
- ``markdown``, ``html``: text out of the sections
- ``gather``: a run's input (documents, JSONL, metrics), read through the readers it is given
- ``render``: the report's files as bytes and text (``report_files``)
- ``write``: the one effectful module: it builds the readers (``orch.effects.files``,
  locally or on the login node), reads the recipe (the registry) and an experiment's
  members (``orch.experiment_runs``), and writes the files

All but ``write`` are pure: the same inputs give the same text byte for byte (no
clock is read: the only times in a report are those in the data), and a figure,
being a dict, is testable without matplotlib, which only ``orch.plots`` imports,
and only when it draws.
"""
from orch.report.build import build, partial_note
from orch.report.documents import latencies, swept_names, throughputs
from orch.report.figures import figures_of, llm_distribution_figure, metrics_figure, sweep_figure
from orch.report.gather import gather
from orch.report.html import html
from orch.report.markdown import markdown
from orch.report.render import render, report_files
from orch.report.tables import comparison_rows, environment_rows, member_rows, result_rows, target_rows
from orch.report.write import write_report

__all__ = (
    "build", "markdown", "html", "write_report", "report_files", "render", "gather", "swept_names", "figures_of",
    "comparison_rows", "result_rows", "environment_rows", "member_rows", "target_rows", "partial_note",
    "throughputs", "latencies", "sweep_figure", "llm_distribution_figure", "metrics_figure",
)
