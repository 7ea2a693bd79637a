"""report.html: one self-contained page (images as base64 data URIs, inline CSS, no network).

A small inline script checks the page once it has loaded: the title becomes "ok:<images>" when every image
decoded, or "bad:<reason>" if one did not or a script error was raised, so a headless browser can verify it.
"""
from __future__ import annotations

import base64
import html
import time

from dlx.core.numbers import fmt
from dlx.report.figures import Report

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0 auto; max-width: 1200px;
       padding: 1.5rem 2rem 4rem; color: #1f2328; background: #fff; line-height: 1.45; }
h1 { font-size: 1.7rem; margin-bottom: .2rem; } h2 { font-size: 1.25rem; margin-top: 2.2rem;
  border-bottom: 1px solid #d0d7de; padding-bottom: .3rem; }
.meta { color: #57606a; font-size: .9rem; }
.numbers { display: flex; flex-wrap: wrap; gap: .8rem; margin: 1rem 0; }
.number { border: 1px solid #d0d7de; border-radius: 8px; padding: .5rem .9rem; min-width: 9rem; }
.number .k { color: #57606a; font-size: .8rem; } .number .v { font-size: 1.25rem; font-weight: 600; }
figure { margin: 1.2rem 0 2rem; } figure img { max-width: 100%; height: auto; border: 1px solid #eaeef2; }
figcaption { color: #57606a; font-size: .9rem; }
table { border-collapse: collapse; font-size: .88rem; margin: .6rem 0 1.2rem; }
th, td { border: 1px solid #d0d7de; padding: .25rem .6rem; text-align: right; }
th { background: #f6f8fa; } td:first-child, th:first-child { text-align: left; }
.note { background: #fff8c5; border: 1px solid #d4a72c66; border-radius: 6px; padding: .5rem .8rem; }
"""

# Runs before anything else: records script errors, then checks every image once the page has loaded.
CHECK = """
(function () {
  var problems = [];
  window.addEventListener("error", function (e) { problems.push("error " + (e.message || e.type)); }, true);
  var original = console.error;
  console.error = function () { problems.push("console " + Array.prototype.join.call(arguments, " "));
                                return original.apply(console, arguments); };
  window.addEventListener("load", function () {
    var images = document.images, broken = 0;
    for (var i = 0; i < images.length; i++) {
      if (!images[i].complete || images[i].naturalWidth === 0) { broken++; }
    }
    if (broken) { problems.push(broken + " image(s) did not load"); }
    document.title = problems.length ? "bad:" + problems.join("; ") : "ok:" + images.length;
  });
})();
"""

# Nothing may be fetched: images are data URIs, style and script are inline.
CSP = ("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; "
       "style-src 'unsafe-inline'; script-src 'unsafe-inline'\">\n")
KEY_NUMBERS = 8  # number tiles shown at the top


def _data_uri(path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _tiles(report: Report) -> str:
    shown = [(k, v) for k, v in report.numbers.items() if isinstance(v, (int, float, str)) and v is not None]
    return "".join(f'<div class="number"><div class="k">{html.escape(k.replace("_", " "))}</div>'
                   f'<div class="v">{html.escape(fmt(v))}</div></div>' for k, v in shown[:KEY_NUMBERS])


def _table(title: str, columns: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(cell))}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<h2>{html.escape(title)}</h2>\n<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render(report: Report) -> str:
    parts = [f"<h1>{html.escape(report.title)}</h1>",
             f'<p class="meta">{html.escape(report.kind)} folder <code>{html.escape(str(report.folder))}</code>'
             f" · report written {time.strftime('%Y-%m-%d %H:%M')}</p>",
             f'<div class="numbers">{_tiles(report)}</div>']
    parts += [f'<p class="note">{html.escape(note)}</p>' for note in report.notes]
    if report.tables:
        parts.append(_table(report.tables[0].title, report.tables[0].columns, report.tables[0].rows))
    for figure in report.figures:
        caption = f"<figcaption>{html.escape(figure.caption)}</figcaption>" if figure.caption else ""
        parts.append(f"<h2>{html.escape(figure.title)}</h2>\n<figure><img src=\"{_data_uri(figure.png)}\" "
                     f"alt=\"{html.escape(figure.title)}\">{caption}</figure>")
    parts += [_table(t.title, t.columns, t.rows) for t in report.tables[1:]]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n" + CSP +
            f"<title>{html.escape(report.title)}</title>\n<script>{CHECK}</script>\n<style>{CSS}</style></head>\n"
            "<body>\n" + "\n".join(parts) + "\n</body></html>\n")
