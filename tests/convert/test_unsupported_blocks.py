"""Blocks an OpenAI-kind provider cannot take never fail the request: PDFs become their text (or a clear
placeholder), images for a text-only model and file references become placeholders."""

from __future__ import annotations

import time

import orjson

from llmproxy.convert import documents
from llmproxy.convert.quirks import Quirks
from llmproxy.convert.request import to_openai
from tests.convert.pdfs import b64, encrypted_pdf, image_only_pdf, pdf_block, report_pdf, text_pdf

PNG = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}


def conv(messages, **kw):
    quirks = Quirks(**kw.pop("quirks", {}))
    return to_openai({"model": "x", "max_tokens": 100, "messages": messages}, model="up", provider="prov",
                     quirks=quirks, **kw)


def user(*blocks):
    return {"role": "user", "content": list(blocks)}


def test_pdf_in_a_user_turn_becomes_its_text_with_a_note():
    pdf = text_pdf([["Invoice 4711", "Total due: 99.50 EUR"], ["Payment within 30 days"]])
    out = conv([user({"type": "text", "text": "Summarise this."}, pdf_block(pdf, "invoice.pdf"))])
    content = out["messages"][0]["content"]
    assert isinstance(content, str)  # only text parts left: one string
    assert "Summarise this." in content
    assert 'PDF document "invoice.pdf" (2 pages) converted to plain text by llmproxy' in content
    assert "prov does not accept PDF files" in content
    assert "Total due: 99.50 EUR" in content and "Payment within 30 days" in content
    assert "--- page 2 ---" in content


def test_pdf_inside_a_tool_result_stays_in_the_tool_message():
    pdf = text_pdf([["Quarterly numbers: 12, 15, 19"]])
    out = conv([
        user({"type": "text", "text": "read report.pdf"}),
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_01", "name": "Read",
                                           "input": {"file_path": "report.pdf"}}]},
        user({"type": "tool_result", "tool_use_id": "toolu_01", "content": [pdf_block(pdf)]}),
    ])
    tool = out["messages"][2]
    assert tool["role"] == "tool" and tool["tool_call_id"] == "toolu_01"
    assert "Quarterly numbers: 12, 15, 19" in tool["content"] and "[PDF document (1 page)" in tool["content"]
    assert len(out["messages"]) == 3  # nothing trailing


def test_pdf_inside_a_tool_result_follows_as_a_file_when_the_provider_takes_pdfs():
    pdf = text_pdf([["x"]])
    out = conv([user({"type": "tool_result", "tool_use_id": "toolu_01", "content": [pdf_block(pdf, "a.pdf")]})],
               quirks={"pdf": True})
    assert out["messages"][0]["content"] == "[document attached below]"
    assert out["messages"][1]["content"][0]["type"] == "file"
    assert out["messages"][1]["content"][0]["file"]["filename"] == "a.pdf"


def test_unreadable_pdfs_become_placeholders():
    cases = {
        "password-protected": encrypted_pdf(),
        "no text layer (scanned or image-only pages)": image_only_pdf(),
        "could not be read": b"%PDF-1.7\n this is not really a pdf \x00\x01",
        "not a PDF file": b"PK\x03\x04 a zip file",
    }
    for why, data in cases.items():
        content = conv([user(pdf_block(data, "scan.pdf"))])["messages"][0]["content"]
        assert content.startswith('[PDF document "scan.pdf" omitted: prov does not accept PDF files'), content
        assert why in content
    bad_b64 = {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "@@@"}}
    assert "omitted" in conv([user(bad_b64)])["messages"][0]["content"]


def test_images_for_a_text_only_model_and_file_references_are_placeholders():
    out = conv([user({"type": "text", "text": "what is this?"}, PNG)], images=False)
    assert out["messages"][0]["content"] == ("what is this?\n\n[Image omitted: the prov model for this request "
                                             "does not accept images.]")
    out = conv([user({"type": "tool_result", "tool_use_id": "t1", "content": [
        {"type": "text", "text": "screenshot:"}, PNG]})], images=False)
    assert out["messages"] == [{"role": "tool", "tool_call_id": "t1", "content":
                                "screenshot:\n[Image omitted: the prov model for this request does not accept images.]"}]
    out = conv([user({"type": "image", "source": {"type": "file", "file_id": "file_123"}},
                     {"type": "document", "source": {"type": "file", "file_id": "file_456"}, "title": "spec"},
                     {"type": "document", "source": {"type": "url", "url": "https://example.com/a.pdf"}})])
    text = out["messages"][0]["content"]
    assert "[Image (file file_123) omitted" in text and '[Document "spec" (file file_456) omitted' in text
    assert "https://example.com/a.pdf" in text
    # images still go as images to a model that takes them
    assert conv([user(PNG)])["messages"][0]["content"][0]["type"] == "image_url"


def test_a_long_session_with_a_pdf_keeps_converting():
    """Claude Code resends the PDF every turn: every later request converts, and the PDF is read once."""
    documents._cache.clear()
    pdf = pdf_block(report_pdf(5), "r.pdf")
    history = [user({"type": "text", "text": "read this"}, pdf)]
    for turn in range(5):
        out = conv(history)
        assert "Section 5: Findings for page 5" in out["messages"][0]["content"]
        history += [{"role": "assistant", "content": [{"type": "text", "text": f"answer {turn}"}]},
                    user({"type": "text", "text": f"question {turn}"})]
    assert len(documents._cache) == 1


def test_twenty_page_pdf_fallback_size_and_time(capsys):
    """What the fallback sends for a 20-page text PDF, and what it costs (reported in the issue)."""
    raw = report_pdf(20)
    block = pdf_block(raw, "report.pdf")
    documents._cache.clear()
    t0 = time.perf_counter()
    out = conv([user(block)])
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    conv([user(block)])
    warm = time.perf_counter() - t0
    text = out["messages"][0]["content"]
    sent = len(orjson.dumps(out))
    assert text.count("--- page ") == 20 and "Section 20: Findings for page 20" in text
    assert len(text) <= documents.MAX_CHARS + 500
    assert cold < 5 and warm < 0.05
    with capsys.disabled():
        print(f"\n20-page PDF: {len(raw)} bytes ({len(b64(raw))} base64) -> {len(text)} chars of text "
              f"(request {sent} bytes, ~{len(text) // 4} tokens); first conversion {cold * 1000:.0f} ms, "
              f"repeat {warm * 1000:.1f} ms")


def test_very_long_pdf_text_is_cut_with_a_note(monkeypatch):
    monkeypatch.setattr(documents, "MAX_CHARS", 5_000)
    documents._cache.clear()
    content = conv([user(pdf_block(report_pdf(10)))])["messages"][0]["content"]
    assert "The text was cut short" in content and len(content) < 5_600
    documents._cache.clear()
