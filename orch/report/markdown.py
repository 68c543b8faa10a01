"""The report as Markdown: text out of ``build``'s sections, figures referenced as PNG files beside it."""
import re

from orch.results import cell_text, columns_of

__all__ = ("markdown",)


def _fence(text):
    """A code fence longer than any run of backticks in ``text``, so the text cannot close it.

    >>> _fence("a: 1"), _fence("x: ````")
    ('```', '`````')
    """
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
