"""Markdown to safe HTML for the editor preview (the only module importing markdown_it).

Raw HTML in an article is never passed through: with ``html`` off, markdown-it
escapes it, and its link validator drops ``javascript:``/``data:`` URLs.
"""

from __future__ import annotations

from markdown_it import MarkdownIt


def render_markdown(body: str) -> str:
    """HTML for ``body`` with every tag the author typed shown as text."""
    parser = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    parser.enable("table")
    return str(parser.render(body))
