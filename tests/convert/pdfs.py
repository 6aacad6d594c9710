"""PDFs made by hand for the tests: text pages, image-only pages, an encrypted copy, damaged bytes."""

from __future__ import annotations

import base64
import io
import zlib


def _pdf(page_streams: list[bytes]) -> bytes:
    """A PDF with one page per content stream (Helvetica as /F1), cross-reference table included."""
    objs: list[bytes] = [b"", b""]  # 1: catalog, 2: pages (filled below)
    font = len(objs) + 1
    objs.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    kids = []
    for stream in page_streams:
        body = zlib.compress(stream)
        content = len(objs) + 1
        objs.append(b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(body) + body + b"\nendstream")
        page = len(objs) + 1
        objs.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R "
                    b"/Resources << /Font << /F1 %d 0 R >> >> >>" % (content, font))
        kids.append(page)
    objs[0] = b"<< /Type /Catalog /Pages 2 0 R >>"
    objs[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(b"%d 0 R" % k for k in kids), len(kids))
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for n, obj in enumerate(objs, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % n + obj + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1))
    for off in offsets:
        out.write(b"%010d 00000 n \n" % off)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref))
    return out.getvalue()


def _escape(line: str) -> bytes:
    return line.encode("cp1252").replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")


def text_pdf(pages: list[list[str]]) -> bytes:
    streams = []
    for lines in pages:
        ops = [b"BT /F1 10 Tf 14 TL 56 740 Td"]
        for line in lines:
            ops.append(b"(" + _escape(line) + b") Tj T*")
        ops.append(b"ET")
        streams.append(b"\n".join(ops))
    return _pdf(streams)


def report_pdf(n_pages: int = 20, lines_per_page: int = 45) -> bytes:
    """A plausible report: a heading and dense prose lines on every page."""
    words = ("latency throughput provider routing fallback budget tokens context window stream converter "
             "quarterly revenue margin forecast region customer retention analysis appendix").split()
    pages = []
    for p in range(1, n_pages + 1):
        lines = [f"Section {p}: Findings for page {p}"]
        for i in range(lines_per_page - 1):
            lines.append(" ".join(words[(p * 7 + i * 3 + k) % len(words)] for k in range(14)) + f" ({p}.{i})")
        pages.append(lines)
    return text_pdf(pages)


def image_only_pdf(n_pages: int = 2) -> bytes:
    """Pages that draw shapes but carry no text (what a scan looks like to a text extractor)."""
    return _pdf([b"0.5 g 72 72 468 648 re f 0 g 100 100 m 500 700 l S" for _ in range(n_pages)])


def encrypted_pdf(password: str = "s3cret") -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(text_pdf([["Top secret plans"]]))))
    writer.encrypt(user_password=password, owner_password=password + "-owner", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def pdf_block(data: bytes, title: str | None = None) -> dict:
    block: dict = {"type": "document", "source": {"type": "base64", "media_type": "application/pdf",
                                                  "data": b64(data)}}
    if title:
        block["title"] = title
    return block
