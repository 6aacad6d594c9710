"""Content a provider cannot take, as text it can. Pure (no I/O beyond parsing the bytes given).

Claude Code resends the whole history each turn, so one block an upstream rejects (a PDF, an image for a
text-only model) would fail every later request of the session, ``/compact`` included. Instead such a block
becomes text: a PDF's extracted text with a short note saying so, or, when nothing can be extracted
(encrypted, scanned/image-only, corrupt), a placeholder that says what was there and why it is missing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import logging
from collections import OrderedDict
from dataclasses import dataclass

#: extracted text beyond this many characters is cut (about 50k tokens), with a note saying so
MAX_CHARS = 200_000
#: pages beyond this many are not read (Anthropic itself takes at most 100 pages per PDF)
MAX_PAGES = 300
_CACHE_SIZE = 16


@dataclass(frozen=True)
class PdfText:
    pages: int  # pages in the document (0 when it could not be opened)
    text: str  # the extracted text, "" when none
    problem: str = ""  # why there is no text, "" when there is
    truncated: bool = False


_cache: OrderedDict[bytes, PdfText] = OrderedDict()


def pdf_text(data_b64: str) -> PdfText:
    """The text of a base64 PDF, page by page. Never raises; the same bytes are read once (the history is
    resent every turn, so a PDF in it is seen again and again)."""
    key = hashlib.sha256(data_b64.encode("ascii", "replace")).digest()
    hit = _cache.get(key)
    if hit is not None:
        _cache.move_to_end(key)
        return hit
    result = _extract(data_b64)
    _cache[key] = result
    while len(_cache) > _CACHE_SIZE:
        _cache.popitem(last=False)
    return result


def _extract(data_b64: str) -> PdfText:
    try:
        raw = base64.b64decode(data_b64, validate=False)
    except (binascii.Error, ValueError):
        return PdfText(0, "", "its data is not valid base64")
    if not raw.lstrip()[:5].startswith(b"%PDF"):
        return PdfText(0, "", "the data is not a PDF file")
    logging.getLogger("pypdf").setLevel(logging.ERROR)  # malformed-file chatter is not our log's business
    try:
        from pypdf import PdfReader
    except ImportError:  # pragma: no cover - pypdf is a dependency
        return PdfText(0, "", "no PDF reader is installed")
    try:
        reader = PdfReader(io.BytesIO(raw), strict=False)
        if reader.is_encrypted:
            try:
                opened = reader.decrypt("")  # many "encrypted" PDFs only restrict printing/copying
            except Exception:  # noqa: BLE001 - e.g. an AES file without the crypto extra installed
                opened = 0
            if not opened:
                return PdfText(0, "", "it is password-protected")
        count = len(reader.pages)
        parts: list[str] = []
        size = 0
        truncated = count > MAX_PAGES
        for n, page in enumerate(reader.pages[:MAX_PAGES], start=1):
            try:
                text = (page.extract_text() or "").strip()
            except Exception:  # noqa: BLE001 - one broken page must not lose the others
                text = ""
            if text:
                parts.append(f"--- page {n} ---\n{text}")
                size += len(parts[-1])
            if size > MAX_CHARS:
                truncated = True
                break
    except Exception as exc:  # noqa: BLE001 - pypdf raises many kinds of errors on damaged files
        return PdfText(0, "", f"it could not be read ({type(exc).__name__})")
    text = "\n\n".join(parts)
    if not text.strip():
        return PdfText(count, "", "it has no text layer (scanned or image-only pages)")
    if len(text) > MAX_CHARS:
        text = text[:MAX_CHARS]
    return PdfText(count, text, "", truncated)


def _name(title: object) -> str:
    return f' "{title}"' if isinstance(title, str) and title else ""


def pdf_as_text(data_b64: str, title: object, provider: str) -> str:
    """A PDF block for a provider without PDF input: its text with a note, or a placeholder."""
    got = pdf_text(data_b64)
    name = _name(title)
    if got.text:
        pages = f"{got.pages} page{'s' if got.pages != 1 else ''}"
        cut = " The text was cut short; the rest of the document is not included." if got.truncated else ""
        return (f"[PDF document{name} ({pages}) converted to plain text by llmproxy because {provider} does not "
                f"accept PDF files; layout, images and figures are not included.{cut}]\n\n{got.text}")
    return (f"[PDF document{name} omitted: {provider} does not accept PDF files and its text could not be "
            f"extracted because {got.problem}.]")


def placeholder(what: str, why: str) -> str:
    """The text that stands in for a block a provider cannot take."""
    return f"[{what} omitted: {why}.]"
