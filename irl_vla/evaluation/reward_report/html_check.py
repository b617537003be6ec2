"""Structural check of a written report: well-formed HTML, every section present, every image decodes, nothing
fetched from outside the file (no external script, style sheet, image or font).
"""  # noqa: D205

from __future__ import annotations

import base64
import binascii
import io
from dataclasses import dataclass, field
from html.parser import HTMLParser

from PIL import Image

#: Elements without a closing tag.
VOID_ELEMENTS = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track", "wbr"}
)
#: Prefix of an embedded PNG image.
PNG_DATA_URI = "data:image/png;base64,"


@dataclass
class HtmlSummary:
    """What a checked report holds.

    Attributes:
        sections: ids of its ``<section>`` elements, in order.
        images: embedded images that decoded.
        image_sizes: (width, height) of each [px].
    """

    sections: list[str] = field(default_factory=list)
    images: int = 0
    image_sizes: list[tuple[int, int]] = field(default_factory=list)


class _Checker(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, tuple[int, int]]] = []
        self.summary = HtmlSummary()
        self.errors: list[str] = []
        self.saw_doctype = False

    def handle_decl(self, decl: str) -> None:
        self.saw_doctype = self.saw_doctype or decl.lower().startswith("doctype html")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        where = f"line {self.getpos()[0]}"
        if tag == "section":
            if not a.get("id"):
                self.errors.append(f"{where}: <section> without an id")
            else:
                self.summary.sections.append(str(a["id"]))
        for key in ("src", "href"):
            value = a.get(key) or ""
            if value.startswith(("http:", "https:", "//", "file:")) or (tag in ("script", "link") and value):
                self.errors.append(f"{where}: <{tag} {key}={value[:60]!r}> fetches from outside the file")
        if tag == "img":
            self._image(a.get("src") or "", where)
        if tag not in VOID_ELEMENTS:
            self.stack.append((tag, self.getpos()))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID_ELEMENTS:
            self.stack.pop()

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID_ELEMENTS:
            return
        if not self.stack or self.stack[-1][0] != tag:
            open_tag = self.stack[-1][0] if self.stack else "nothing"
            self.errors.append(f"line {self.getpos()[0]}: </{tag}> closes <{open_tag}>")
            return
        self.stack.pop()

    def _image(self, src: str, where: str) -> None:
        if not src.startswith(PNG_DATA_URI):
            self.errors.append(f"{where}: <img> is not an embedded PNG ({src[:40]!r})")
            return
        try:
            data = base64.b64decode(src[len(PNG_DATA_URI) :], validate=True)
            with Image.open(io.BytesIO(data)) as img:
                img.load()  # decodes every pixel
                size = img.size
        except (binascii.Error, OSError, ValueError) as e:
            self.errors.append(f"{where}: embedded image does not decode ({e})")
            return
        self.summary.images += 1
        self.summary.image_sizes.append(size)


def check_report_html(text: str, required_sections: tuple[str, ...] = (), where: str = "report") -> HtmlSummary:
    """Check a report's HTML; returns what it holds.

    Raises:
        ValueError: naming ``where`` and every problem found (unbalanced tags, missing sections, an image that
            does not decode, an external reference).
    """
    checker = _Checker()
    checker.feed(text)
    checker.close()
    errors = list(checker.errors)
    if not checker.saw_doctype:
        errors.append("no <!DOCTYPE html>")
    errors += [f"<{tag}> opened at line {pos[0]} is never closed" for tag, pos in checker.stack]
    missing = [s for s in required_sections if s not in checker.summary.sections]
    if missing:
        errors.append(f"sections missing: {missing}")
    if errors:
        raise ValueError(f"{where}: invalid HTML: " + "; ".join(errors[:10]))
    return checker.summary
