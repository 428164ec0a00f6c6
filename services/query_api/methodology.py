"""``/methodology``: docs/METHODOLOGY.md (shipped as ``methodology.md``, a symlink) rendered once.

CommonMark with tables (markdown-it-py), raw HTML off: the document is ours, but nothing in it
can inject markup. A heading ending in ``{#id}`` gets that id (and a self-link), the suffix
stripped from its text: the figures' labels on the pages link to those ids.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.rules_core import StateCore
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict

SOURCE = Path(__file__).resolve().parent / "methodology.md"
_ANCHOR = re.compile(r"\s*\{#([A-Za-z][\w-]*)\}\s*$")


@dataclass(frozen=True)
class Methodology:
    title: str
    html: str
    #: the anchors of its headings, in order
    anchors: tuple[str, ...]
    version: str


def _heading_anchors(state: StateCore) -> None:
    """``## Title {#id}`` → ``<h2 id="id">Title</h2>`` (before inline parsing reads the text)."""
    tokens = state.tokens
    for i, token in enumerate(tokens):
        if token.type != "heading_open" or i + 1 >= len(tokens):
            continue
        inline = tokens[i + 1]
        found = _ANCHOR.search(inline.content)
        if found:
            inline.content = inline.content[: found.start()]
            token.attrSet("id", found.group(1))


def _heading_close(self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType) -> str:
    """A self-link after an anchored heading's text, for sharing a section."""
    anchor = tokens[idx - 2].attrGet("id") if idx >= 2 else None
    link = f' <a class="anchor" href="#{anchor}" aria-label="Link to this section">#</a>' if anchor else ""
    return link + self.renderToken(tokens, idx, options, env)


def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    md.core.ruler.before("inline", "heading_anchors", _heading_anchors)
    md.add_render_rule("heading_close", _heading_close)
    return md


def render(text: str) -> Methodology:
    """The document as HTML, its first heading as the title, and the anchors of its headings."""
    md = _parser()
    tokens = md.parse(text)
    anchors, title = [], "Methodology"
    for i, token in enumerate(tokens):
        if token.type == "heading_open":
            if token.tag == "h1" and title == "Methodology":
                title = tokens[i + 1].content
            anchor = token.attrGet("id")
            if anchor:
                anchors.append(str(anchor))
    html = md.renderer.render(tokens, md.options, {})
    return Methodology(title, html, tuple(anchors), hashlib.sha256(text.encode()).hexdigest()[:16])


def load() -> Methodology:
    """Read and render the shipped document (once, at start-up)."""
    return render(SOURCE.read_text(encoding="utf-8"))
