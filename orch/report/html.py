"""The report as one self-contained HTML file: text out of ``build``'s sections, styles inline, figures embedded."""
import base64
import html as html_lib

from orch.results import cell_text, columns_of

__all__ = ("html",)

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
