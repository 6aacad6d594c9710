"""Translation fidelity (issue 15), through the official SDKs against the fake upstreams of both kinds:
PDFs and refusals and stop sequences on OpenAI-kind targets, the error table, the OpenAI surface's ranges,
JSON output and failed streams, and the Anthropic passthrough's beta headers and ignored ``stream: true``."""

from __future__ import annotations

import aiohttp
import anthropic
import openai
import pytest

from tests.convert.pdfs import b64, encrypted_pdf, report_pdf, text_pdf

FIVE_STOPS = ["<<1>>", "<<2>>", "<<3>>", "<<4>>", "END-OF-ANSWER"]


def aclient(url: str, profile: str = "oai") -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=f"{url}/p/{profile}", api_key="x", max_retries=0)


def oclient(url: str, profile: str = "test") -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{url}/p/{profile}/v1", api_key="x", max_retries=0)


def pdf(data: bytes, title: str | None = None) -> dict:
    block: dict = {"type": "document", "source": {"type": "base64", "media_type": "application/pdf",
                                                  "data": b64(data)}}
    if title:
        block["title"] = title
    return block


async def ask(c: anthropic.AsyncAnthropic, stream: bool, **kw):
    if stream:
        async with c.messages.stream(**kw) as s:
            return await s.get_final_message()
    return await c.messages.create(**kw)


# --------------------------------------------------------------------- PDFs to an OpenAI-kind provider

@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
async def test_pdf_session_keeps_working_on_a_provider_without_pdfs(proxy, fake_openai, stream):
    """Claude Code reads a PDF (tool result), then keeps going: every later turn resends it."""
    url, _ = proxy
    report = text_pdf([["Revenue grew 12 percent"], ["Churn fell to 3 percent"]])
    history = [
        {"role": "user", "content": [{"type": "text", "text": "Read q3.pdf and summarise"}]},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_read_01", "name": "Read",
                                           "input": {"file_path": "q3.pdf"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_read_01",
                                      "content": [pdf(report, "q3.pdf")]}]},
    ]
    async with aclient(url) as c:
        for turn in range(3):
            fake_openai.script.append({"text": f"Summary {turn}."})
            final = await ask(c, stream, model="claude-opus-4-8", max_tokens=100, messages=history)
            assert final.content[0].text == f"Summary {turn}."
            history += [{"role": "assistant", "content": [{"type": "text", "text": final.content[0].text}]},
                        {"role": "user", "content": [{"type": "text", "text": f"and then? {turn}"},
                                                     pdf(encrypted_pdf(), "locked.pdf")]}]
    sent = fake_openai.requests[-1]["body"]["messages"]
    tool = next(m for m in sent if m["role"] == "tool")
    assert "Revenue grew 12 percent" in tool["content"] and "Churn fell to 3 percent" in tool["content"]
    assert "converted to plain text by llmproxy" in tool["content"]
    last_user = sent[-1]["content"]
    assert '[PDF document "locked.pdf" omitted' in last_user and "password-protected" in last_user
    assert "application/pdf" not in str(fake_openai.requests[-1]["body"])


async def test_twenty_page_pdf_through_the_proxy(proxy, fake_openai):
    url, _ = proxy
    async with aclient(url) as c:
        r = await c.messages.create(model="m", max_tokens=50, messages=[{"role": "user", "content": [
            pdf(report_pdf(20), "annual.pdf"), {"type": "text", "text": "What does page 20 say?"}]}])
    assert r.content[0].text
    text = fake_openai.requests[-1]["body"]["messages"][-1]["content"]
    assert "Section 20: Findings for page 20" in text and text.endswith("What does page 20 say?")


# ------------------------------------------------------------------------------------------- refusals

@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
async def test_refusal_reaches_the_client(proxy, fake_openai, stream):
    url, _ = proxy
    fake_openai.script.append({"refusal": "I can't help with that request."})
    async with aclient(url) as c:
        final = await ask(c, stream, model="m", max_tokens=50, messages=[{"role": "user", "content": "do harm"}])
    assert final.stop_reason == "refusal"
    assert [b.type for b in final.content] == ["text"]
    assert final.content[0].text == "I can't help with that request."


# -------------------------------------------------------------------------------- five stop sequences

@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
async def test_fifth_stop_sequence_is_enforced(proxy, fake_openai, stream):
    url, _ = proxy
    fake_openai.script.append({"text": "The result is 42. END-OF-ANSWER Then the model rambles on"})
    async with aclient(url) as c:
        final = await ask(c, stream, model="m", max_tokens=50, stop_sequences=FIVE_STOPS,
                          messages=[{"role": "user", "content": "compute"}])
    assert final.content[0].text == "The result is 42. "
    assert final.stop_reason == "stop_sequence" and final.stop_sequence == "END-OF-ANSWER"
    assert fake_openai.requests[-1]["body"]["stop"] == FIVE_STOPS[:4]


# ------------------------------------------------------------------------------------- error mapping

async def test_anthropic_413_stays_413(proxy, fake_anthropic):
    url, _ = proxy
    fake_anthropic.script.append({"status": 413, "error_type": "request_too_large",
                                  "message": "Request exceeds the maximum allowed number of bytes."})
    async with aclient(url, "test") as c:
        with pytest.raises(anthropic.APIStatusError) as exc:
            await c.messages.create(model="m", max_tokens=10, messages=[{"role": "user", "content": "x"}])
    assert exc.value.status_code == 413 and isinstance(exc.value, anthropic.ContentTooLargeError)
    assert exc.value.body["error"]["type"] == "request_too_large"


async def test_openai_kind_413_is_request_too_large(proxy, fake_openai, fake_anthropic):
    url, _ = proxy
    fake_openai.script.append({"status": 413, "message": "Request Entity Too Large"})
    async with aclient(url) as c:
        with pytest.raises(anthropic.APIStatusError) as exc:
            await c.messages.create(model="m", max_tokens=10, messages=[{"role": "user", "content": "x"}])
    assert exc.value.status_code == 413 and exc.value.body["error"]["type"] == "request_too_large"
    assert fake_anthropic.requests == []  # not a reason to try the fallback


async def test_context_overflow_keeps_the_400_claude_code_compacts_on(proxy, fake_anthropic):
    url, _ = proxy
    fake_anthropic.script.append({"status": 400, "error_type": "invalid_request_error",
                                  "message": "prompt is too long: 215000 tokens > 200000 maximum"})
    async with aclient(url, "test") as c:
        with pytest.raises(anthropic.BadRequestError, match="prompt is too long"):
            await c.messages.create(model="m", max_tokens=10, messages=[{"role": "user", "content": "x"}])


async def test_context_overflow_on_the_openai_surface_has_openais_code(proxy, fake_anthropic):
    url, _ = proxy
    fake_anthropic.script.append({"status": 400, "error_type": "invalid_request_error",
                                  "message": "prompt is too long: 215000 tokens > 200000 maximum"})
    async with oclient(url) as c:
        with pytest.raises(openai.BadRequestError) as exc:
            await c.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    assert exc.value.code == "context_length_exceeded" and exc.value.param == "messages"


# --------------------------------------------------------------- the OpenAI surface, Anthropic targets

async def test_temperature_above_one_is_clamped_for_anthropic(proxy, fake_anthropic):
    url, _ = proxy
    async with oclient(url) as c:
        await c.chat.completions.create(model="gpt-4o", temperature=1.6, messages=[{"role": "user", "content": "x"}])
        await c.chat.completions.create(model="gpt-4o", temperature=0.7, messages=[{"role": "user", "content": "x"}])
    assert [r["body"]["temperature"] for r in fake_anthropic.requests] == [1.0, 0.7]


async def test_json_schema_is_structured_output_for_anthropic(proxy, fake_anthropic):
    url, _ = proxy
    schema = {"type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"],
              "additionalProperties": False}
    async with oclient(url) as c:
        await c.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "title?"}],
                                        response_format={"type": "json_schema", "json_schema": {
                                            "name": "t", "schema": schema, "strict": True}})
    sent = fake_anthropic.requests[-1]["body"]
    assert sent["output_config"] == {"format": {"type": "json_schema", "schema": schema}}
    assert "JSON" not in str(sent.get("system", ""))


# ------------------------------------------------------------------ failed streams on the OpenAI surface

async def test_failing_anthropic_stream_raises_in_the_openai_sdk(proxy, fake_anthropic):
    url, _ = proxy
    fake_anthropic.script.append({"text": "one two three four five", "error_event_after": 4})
    async with oclient(url) as c:
        with pytest.raises(openai.APIError):
            async for _ in await c.chat.completions.create(model="gpt-4o", stream=True,
                                                           messages=[{"role": "user", "content": "x"}]):
                pass


async def test_cut_openai_stream_raises_in_the_openai_sdk(proxy, fake_openai):
    url, _ = proxy
    fake_openai.script.append({"text": "one two three four five", "cut_after": 3})
    async with oclient(url, "oai") as c:
        with pytest.raises(openai.APIError):
            async for _ in await c.chat.completions.create(model="gpt-4o", stream=True,
                                                           messages=[{"role": "user", "content": "x"}]):
                pass


# ------------------------------------------------------------------------------ Anthropic passthrough

async def test_upstream_ignoring_stream_true_still_streams(proxy, fake_anthropic):
    url, _ = proxy
    fake_anthropic.script.append({"text": "JSON instead of a stream", "ignore_stream": True})
    async with aclient(url, "test") as c:
        final = await ask(c, True, model="m", max_tokens=20, messages=[{"role": "user", "content": "x"}])
    assert final.content[0].text == "JSON instead of a stream"


async def test_repeated_beta_header_lines_are_merged(proxy, fake_anthropic):
    url, _ = proxy
    async with aiohttp.ClientSession() as s:
        async with s.post(url + "/p/test/v1/messages", headers=[
                ("x-api-key", "x"), ("anthropic-version", "2023-06-01"),
                ("anthropic-beta", "interleaved-thinking-2025-05-14"),
                ("anthropic-beta", "fine-grained-tool-streaming-2025-05-14")],
                json={"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}) as r:
            assert r.status == 200
    beta = fake_anthropic.requests[-1]["headers"].get("anthropic-beta", "")
    assert "interleaved-thinking-2025-05-14" in beta and "fine-grained-tool-streaming-2025-05-14" in beta
