"""Overhead of the OpenAI -> Anthropic stream conversion, per upstream chunk: SSE decode + JSON parse +
convert + SSE encode, as the OpenAI provider does it. Compared side by side with the bare SSE decode + JSON
parse that any proxy must do, so the ratio is meaningful on a noisy machine.

Usage: python scripts/bench_stream.py
"""

from __future__ import annotations

import statistics
import time

import orjson

from llmproxy.config import ProviderConfig
from llmproxy.convert.stream import StreamConverter
from llmproxy.protocol import sse
from llmproxy.providers.wire import parse_payloads

PROVIDER = ProviderConfig(name="up", kind="openai")


def upstream(n_text: int, n_tool: int) -> bytes:
    def chunk(delta, finish=None):
        return {"id": "chatcmpl-x", "object": "chat.completion.chunk", "created": 1, "model": "m",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    chunks = [chunk({"role": "assistant", "content": ""})]
    chunks += [chunk({"reasoning_content": "thinking word "}) for _ in range(n_text // 4)]
    chunks += [chunk({"content": "some streamed text "}) for _ in range(n_text)]
    chunks.append(chunk({"tool_calls": [{"index": 0, "id": "call_abcdefgh", "function": {"name": "Edit", "arguments": ""}}]}))
    chunks += [chunk({"tool_calls": [{"index": 0, "function": {"arguments": "\"abcd"}}]}) for _ in range(n_tool)]
    chunks.append(chunk({}, "tool_calls"))
    return b"".join(b"data: " + orjson.dumps(c) + b"\n\n" for c in chunks) + b"data: [DONE]\n\n", len(chunks)


def payloads(dec: sse.SSEDecoder, chunk: bytes) -> list:
    """The JSON payloads of the whole frames that have arrived, as the OpenAI provider reads them."""
    region = dec.complete(chunk)
    return parse_payloads(region, PROVIDER) if region else []


def convert(data: bytes, network_chunk: int, stream_tool_args: bool) -> int:
    dec, conv, out = sse.SSEDecoder(), StreamConverter("m", stream_tool_args=stream_tool_args), 0
    for i in range(0, len(data), network_chunk):
        for d in payloads(dec, data[i:i + network_chunk]):
            if d != "[DONE]":
                out += len(b"".join(sse.encode(n, p) for n, p in conv.feed(d)))
    return out + len(b"".join(sse.encode(n, p) for n, p in conv.finish()))


def baseline(data: bytes, network_chunk: int) -> int:
    dec, n = sse.SSEDecoder(), 0
    for i in range(0, len(data), network_chunk):
        for d in payloads(dec, data[i:i + network_chunk]):
            if d != "[DONE]":
                n += len(d)
    return n


def timed(fn, repeat=15) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    data, n = upstream(2000, 500)
    print(f"upstream: {n} chunks, {len(data) / 1024:.0f} KiB")
    for net in (256, 4096):
        base = timed(lambda net=net: baseline(data, net))
        for mode in (False, True):
            conv = timed(lambda m=mode, net=net: convert(data, net, m))
            print(f"network reads of {net:>4} B, stream_tool_args={mode!s:<5}: convert {conv / n * 1e6:5.2f} us/chunk, "
                  f"decode+parse only {base / n * 1e6:5.2f} us/chunk, conversion overhead "
                  f"{(conv - base) / n * 1e6:5.2f} us/chunk ({conv / base:.1f}x)")


if __name__ == "__main__":
    main()
