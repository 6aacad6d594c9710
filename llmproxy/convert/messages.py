"""Anthropic system + messages -> Chat Completions messages (pure), for ``convert/request.py``.

System blocks become one system message, minus Claude Code's billing-header block (it changes every request
and defeats upstream prompt caching); tool results become ``role: "tool"`` messages in order, before the
user's other content (their images and documents follow in a user message: a tool message takes text
only); tool ids are preserved; an assistant turn's thinking goes along only where the provider reads it
back (``Quirks.reasoning_in_history``). A block the provider cannot take never fails the request: a PDF
becomes its extracted text, an image for a text-only model or a file reference becomes a placeholder
(``convert/documents.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from llmproxy.convert.documents import pdf_as_text, placeholder
from llmproxy.convert.quirks import Quirks

BILLING_PREFIX = "x-anthropic-billing-header:"


@dataclass(frozen=True)
class Target:
    provider: str
    quirks: Quirks
    images: bool  # the model accepts image input


def system_text(system: Any) -> str:
    if isinstance(system, str):
        return system
    if isinstance(system, list):
        parts = [b.get("text", "") for b in system if isinstance(b, dict) and b.get("type", "text") == "text"]
        return "\n\n".join(p for p in parts if p and not p.startswith(BILLING_PREFIX))
    return ""


def _image_part(block: dict, t: Target) -> dict:
    src = block.get("source") or {}
    kind = src.get("type")
    if not t.images:
        return {"type": "text", "text": placeholder("Image", f"the {t.provider} model for this request does "
                                                             "not accept images")}
    if kind == "base64":
        return {"type": "image_url", "image_url": {"url": f"data:{src.get('media_type', 'image/png')};base64,{src.get('data', '')}"}}
    if kind == "url":
        return {"type": "image_url", "image_url": {"url": src.get("url", "")}}
    ref = f" (file {src['file_id']})" if kind == "file" and src.get("file_id") else ""
    return {"type": "text", "text": placeholder(f"Image{ref}", f"an image given as {kind!r} cannot be sent to "
                                                                f"{t.provider}")}


def _document_part(block: dict, t: Target) -> dict:
    src = block.get("source") or {}
    title = block.get("title")
    kind = src.get("type")
    if kind == "text":
        text = src.get("data", "")
        return {"type": "text", "text": f"{title}\n\n{text}" if title else text}
    if kind == "content":
        inner = src.get("content")
        text = inner if isinstance(inner, str) else "\n".join(
            b.get("text", "") for b in inner or [] if isinstance(b, dict) and b.get("type") == "text")
        return {"type": "text", "text": text}
    if kind == "base64" and src.get("media_type", "application/pdf") == "application/pdf":
        data = src.get("data", "")
        if not t.quirks.pdf:
            return {"type": "text", "text": pdf_as_text(data if isinstance(data, str) else "", title, t.provider)}
        return {"type": "file", "file": {"filename": title or "document.pdf",
                                         "file_data": f"data:application/pdf;base64,{data}"}}
    name = f' "{title}"' if isinstance(title, str) and title else ""
    if kind == "url":
        return {"type": "text", "text": placeholder(f"Document{name} at {src.get('url', '')}",
                                                    f"llmproxy does not fetch documents for {t.provider}")}
    ref = f" (file {src['file_id']})" if kind == "file" and src.get("file_id") else ""
    return {"type": "text", "text": placeholder(f"Document{name}{ref}", f"a document given as {kind!r} cannot be "
                                                                        f"sent to {t.provider}")}


def text_of(content: Any) -> str:
    """A string content, or the text blocks/parts of a list joined by newlines (the two APIs share the shape)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text")
    return ""


def _tool_result(block: dict, t: Target) -> tuple[dict, list[dict]]:
    """(the role:tool message, image/file parts that must follow in a user message: a tool message takes
    text only)."""
    content = block.get("content")
    attached: list[dict] = []
    if isinstance(content, list):
        texts = []
        for b in content:
            if not isinstance(b, dict):
                continue
            kind = b.get("type")
            if kind == "text":
                texts.append(b.get("text", ""))
            elif kind in ("image", "document"):
                part = _image_part(b, t) if kind == "image" else _document_part(b, t)
                if part["type"] == "text":
                    texts.append(part["text"])
                else:
                    attached.append(part)
                    texts.append(f"[{'image' if kind == 'image' else 'document'} attached below]")
            elif kind == "search_result":
                texts.append(text_of(b.get("content")))
        text = "\n".join(texts)
    else:
        text = content if isinstance(content, str) else ""
    if block.get("is_error"):
        text = f"Error: {text}" if text else "Error"
    return {"role": "tool", "tool_call_id": str(block.get("tool_use_id", "")), "content": text}, attached


def _user_messages(content: list, t: Target) -> list[dict]:
    out: list[dict] = []
    parts: list[dict] = []
    trailing: list[dict] = []
    for b in content:
        if not isinstance(b, dict):
            continue
        kind = b.get("type")
        if kind == "tool_result":
            msg, attached = _tool_result(b, t)
            out.append(msg)
            trailing += attached
        elif kind == "text":
            part: dict = {"type": "text", "text": b.get("text", "")}
            if t.quirks.cache_control and "cache_control" in b:
                part["cache_control"] = b["cache_control"]
            parts.append(part)
        elif kind == "image":
            parts.append(_image_part(b, t))
        elif kind == "document":
            parts.append(_document_part(b, t))
        elif kind == "search_result":
            parts.append({"type": "text", "text": text_of(b.get("content"))})
    parts = trailing + parts
    if parts:
        if all(p["type"] == "text" and "cache_control" not in p for p in parts):
            out.append({"role": "user", "content": "\n\n".join(p["text"] for p in parts)})
        else:
            out.append({"role": "user", "content": parts})
    return out


def _assistant_message(content: list, quirks: Quirks) -> dict | None:
    texts, calls, reasoning = [], [], []
    for b in content:
        if not isinstance(b, dict):
            continue
        t = b.get("type")
        if t == "text":
            texts.append(b.get("text", ""))
        elif t == "tool_use":
            calls.append({"id": str(b.get("id", "")), "type": "function",
                          "function": {"name": b.get("name", ""),
                                       "arguments": orjson.dumps(b.get("input", {})).decode()}})
        elif t == "thinking":
            reasoning.append(b.get("thinking", ""))
    msg: dict = {"role": "assistant", "content": "".join(texts) or None}
    if calls:
        msg["tool_calls"] = calls
    elif msg["content"] is None:
        msg["content"] = ""
    if reasoning and quirks.reasoning_in_history:
        msg["reasoning_content"] = "\n".join(reasoning)
    return msg


def chat_messages(body: dict, t: Target) -> list[dict]:
    out: list[dict] = []
    sys_ = system_text(body.get("system"))
    if sys_:
        out.append({"role": "system", "content": sys_})
    for m in body.get("messages") or []:
        role, content = m.get("role"), m.get("content")
        if role == "system":
            out.append({"role": "system", "content": text_of(content) if not isinstance(content, str) else content})
        elif isinstance(content, str):
            out.append({"role": role, "content": content})
        elif role == "user":
            out += _user_messages(content or [], t)
        elif role == "assistant":
            msg = _assistant_message(content or [], t.quirks)
            if msg is not None:
                out.append(msg)
    return out
