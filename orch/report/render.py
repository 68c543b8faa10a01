"""The report as files' contents: figures drawn (``orch.plots``), Markdown and HTML; nothing is written here.

``report_files`` is the whole report as ``{path relative to the report's directory:
bytes or text}``: the same gathered runs give the same bytes (PNG metadata
included), and ``orch.report.write`` only puts them on disk.
"""
from orch.plots import render_png  # imports matplotlib only when a PNG is drawn
from orch.report.build import build
from orch.report.html import html
from orch.report.markdown import markdown

__all__ = ("render", "report_files", "FIGURE_DIR")

FIGURE_DIR = "figures"


def render(runs):
    """(markdown text, html text, {figure name: PNG bytes}) for gathered runs: no files touched."""
    sections, specs = build(runs)
    images = {name: render_png(spec) for name, spec in sorted(specs.items())}
    return markdown(sections, FIGURE_DIR), html(sections, images), images


def report_files(runs):
    """``{"figures/<name>.png": PNG bytes, ..., "report.md": text, "report.html": text}``, in that order."""
    md_text, html_text, images = render(runs)
    files = {"%s/%s.png" % (FIGURE_DIR, name): data for name, data in sorted(images.items())}
    files["report.md"] = md_text
    files["report.html"] = html_text
    return files
