"""Figure specs (plain dicts from ``orch.report.figures``, whose docstring gives their shape) drawn into PNG bytes.

The only module that imports matplotlib, and only when ``render_png`` draws:
importing this module (``orch.report.render`` does) loads nothing heavy. It
uses the Agg backend through ``matplotlib.figure.Figure`` (no pyplot: no global
figure state, no display). PNGs are byte-stable for the same spec: no
``Software`` metadata, a fixed SVG hash salt, fixed size and DPI, and the
bundled DejaVu font.
"""
import io

__all__ = ("render_png",)

PANEL_SIZE = (5.4, 3.6)
DPI = 100
MAX_COLUMNS = 2


def _matplotlib():
    import matplotlib

    matplotlib.use("Agg", force=True)
    return matplotlib


def render_png(spec):
    """A ``lines`` or ``cdf`` figure spec as PNG bytes."""
    matplotlib = _matplotlib()
    from matplotlib.figure import Figure

    panels = spec["panels"]
    columns = min(MAX_COLUMNS, len(panels))
    rows = (len(panels) + columns - 1) // columns
    with matplotlib.rc_context({"svg.hashsalt": "orch", "font.family": "DejaVu Sans", "font.size": 8,
                                "axes.prop_cycle": matplotlib.rcParamsDefault["axes.prop_cycle"]}):
        colours = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
        figure = Figure(figsize=(PANEL_SIZE[0] * columns, PANEL_SIZE[1] * rows + 0.4), dpi=DPI,
                        layout="constrained")
        figure.suptitle(spec.get("title", ""), fontsize=11)
        for index, panel in enumerate(panels):
            axes = figure.add_subplot(rows, columns, index + 1)
            if spec["kind"] == "cdf":
                _cdf(axes, panel, colours)
            else:
                _lines(axes, panel, colours)
            axes.set_title(panel.get("title", ""), fontsize=9)
            axes.set_xlabel(panel.get("xlabel", ""))
            axes.set_ylabel(panel.get("ylabel", ""))
            axes.grid(True, alpha=0.3)
            if panel["series"]:
                axes.legend(fontsize=6, loc="best")
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def _lines(axes, panel, colours):
    for series in panel["series"]:
        marker = "o" if series.get("markers", True) else None
        axes.plot(series["x"], series["y"], linestyle=series.get("style", "-"), marker=marker, markersize=4,
                  color=colours[series.get("color", 0) % len(colours)], label=series["label"])
    ticks = panel.get("xticks")
    if ticks:
        axes.set_xticks(range(len(ticks)), ticks)
        axes.set_xlim(-0.5, len(ticks) - 0.5)
    elif panel.get("xscale"):
        axes.set_xscale(panel["xscale"])
    else:
        xs = [x for s in panel["series"] for x in s["x"] if x > 0]
        # sweeps over clients or sizes usually span decades: a log axis keeps the small points readable
        if xs and min(xs) > 0 and max(xs) / min(xs) >= 50 and all(x > 0 for s in panel["series"] for x in s["x"]):
            axes.set_xscale("log")
    axes.set_ylim(bottom=0)


def _cdf(axes, panel, colours):
    for series in panel["series"]:
        colour = colours[series.get("color", 0) % len(colours)]
        if "samples" in series:
            values = series["samples"]
            n = len(values)
            axes.step(values, [(i + 1) / n for i in range(n)], where="post", color=colour,
                      label="%s (n=%d)" % (series["label"], n))
        else:
            axes.plot([v for _, v in series["quantiles"]], [q / 100.0 for q, _ in series["quantiles"]],
                      linestyle=":", marker="o", markersize=4, color=colour, label=series["label"])
    axes.set_ylim(0, 1.02)
