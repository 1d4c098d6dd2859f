"""Markdown and self-contained HTML from one list of report blocks, so both say the same thing.

Blocks: ``("h1" | "h2" | "p" | "pre", text)``, ``("ul", [text, ...])``, ``("table", DataFrame)``
(or ``("table", DataFrame, css_class)``: how the page lays it out) and ``("img", caption, path)``;
an HTML page embeds its images, so it can be mailed alone. A table wider than the page scrolls
inside itself, so the page never scrolls sideways.
"""

import base64
import html
import textwrap
from pathlib import Path


def _markdown_cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown(blocks: list, width: int = 0) -> str:
    """The blocks as Markdown; each paragraph's lines wrapped at ``width`` columns where it is
    given (a terminal's or a README's), else one line a paragraph."""
    out = []
    for kind, *content in blocks:
        if kind in ("h1", "h2"):
            out.append(f"{'#' * int(kind[1])} {content[0]}")
        elif kind == "p":
            out.append(_wrapped(content[0], width))
        elif kind == "pre":
            out.append(f"```\n{content[0]}\n```")
        elif kind == "ul":
            out.append("\n".join(f"- {item}" for item in content[0]))
        elif kind == "table":
            frame = content[0]
            lines = [
                list(frame.columns),
                ["---"] * len(frame.columns),
                *frame.itertuples(index=False),
            ]
            out.append(
                "\n".join(
                    "| " + " | ".join(_markdown_cell(cell) for cell in line) + " |"
                    for line in lines
                )
            )
        elif kind == "img":
            out.append(f"![{content[0]}]({content[1].name})")
    return "\n\n".join(out) + "\n"


def _wrapped(text: str, width: int) -> str:
    """``text`` in lines of at most ``width`` columns, words and links kept whole."""
    if not width:
        return text
    return textwrap.fill(text, width, break_long_words=False, break_on_hyphens=False)


# The answer's table (class "answer") keeps each ratio on one line and packs its rows, so that a
# laptop's first screen holds every recipe's row; only its last column, why, wraps.
ANSWER_CLASS = "answer"
STYLE = (
    "body{font-family:sans-serif;max-width:78em;margin:1em auto;padding:0 1em;line-height:1.4}"
    "h1{margin:.3em 0}"
    "table{border-collapse:collapse;margin:1em 0;display:block;max-width:100%;overflow-x:auto}"
    "th,td{border:1px solid #ccc;padding:.25em .6em;"
    "text-align:left;font-size:90%}th{background:#f0f0f0}img{max-width:100%}"
    "pre{background:#f4f4f4;padding:1em;overflow-x:auto}"
    f"table.{ANSWER_CLASS}{{margin:.5em 0}}"
    f"table.{ANSWER_CLASS} td,table.{ANSWER_CLASS} th{{padding:.15em .45em;font-size:85%;"
    "white-space:nowrap}"
    f"table.{ANSWER_CLASS} td:last-child{{white-space:normal}}"
)


def _html_image(caption: str, path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    caption = html.escape(caption)
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{caption}">'
        f"<figcaption>{caption}</figcaption></figure>"
    )


def html_page(blocks: list, title: str) -> str:
    out = []
    for kind, *content in blocks:
        if kind in ("h1", "h2", "p", "pre"):
            out.append(f"<{kind}>{html.escape(str(content[0]))}</{kind}>")
        elif kind == "ul":
            out.append(
                "<ul>" + "".join(f"<li>{html.escape(item)}</li>" for item in content[0]) + "</ul>"
            )
        elif kind == "table":
            classes = content[1] if len(content) > 1 else None
            out.append(content[0].to_html(index=False, escape=True, border=0, classes=classes))
        elif kind == "img":
            out.append(_html_image(*content))
    return (
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{STYLE}</style></head><body>\n" + "\n".join(out) + "\n</body></html>\n"
    )
