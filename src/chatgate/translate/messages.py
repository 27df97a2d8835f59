"""OpenAI ``messages`` → Gemini ``systemInstruction`` and ``contents`` (spec §1.4).

Policy (pitfalls B6, B7, B8):
- ``system`` and ``developer`` messages, wherever they stand, become ``systemInstruction``
  parts in order (Gemini has no mid-conversation system turn);
- ``user`` → ``user``; ``assistant`` → ``model``: text parts first, then one ``functionCall``
  part per tool call, in order; consecutive turns of one role are merged;
- a run of ``tool`` (or legacy ``function``) messages → one ``user`` turn of
  ``functionResponse`` parts in the order of the calls; never merged with plain user text;
- thought signatures go back on the exact part they came from; a message-level signature
  goes on the last part of that message;
- empty text parts are dropped, and so is a turn left empty.
"""

from __future__ import annotations

from msgspec import UNSET

from chatgate.errors import InvalidRequest
from chatgate.protocols import gemini as g
from chatgate.protocols import openai as o
from chatgate.translate import google, parts, thinking, tools


def contents(
    messages: list[o.Message], media: parts.Media, *, marker: str | None, part_level_detail: bool
) -> tuple[list[g.Part], list[g.Content]]:
    system: list[g.Part] = []
    out: list[g.Content] = []
    calls: dict[str, tools.Call] = {}
    i = 0
    while i < len(messages):
        message, param = messages[i], f"messages[{i}]"
        if isinstance(message, (o.ToolMessage, o.FunctionMessage)):
            results: list[tuple[int, g.Part]] = []
            while i < len(messages) and isinstance(messages[i], (o.ToolMessage, o.FunctionMessage)):
                results.append(_result(messages[i], f"messages[{i}]", calls, media))  # type: ignore[arg-type]
                i += 1
            results.sort(key=lambda r: r[0])  # stable: call order, then message order
            out.append(g.Content(role="user", parts=[part for _, part in results]))
            continue
        i += 1
        if isinstance(message, (o.SystemMessage, o.DeveloperMessage)):
            system.extend(_text_parts(message.content))
            continue
        if isinstance(message, o.UserMessage):
            role, new = "user", _user_parts(message, param, media, part_level_detail)
        else:
            assert isinstance(message, o.AssistantMessage)
            calls = {}
            role, new = "model", _assistant_parts(message, param, marker, calls)
        if not new:
            continue
        last = out[-1] if out else None
        if last is not None and last.role == role and not _has_results(last):
            last.parts.extend(new)
        else:
            out.append(g.Content(role=role, parts=new))
    return system, out


def _has_results(content: g.Content) -> bool:
    return any(p.function_response is not None for p in content.parts)


def _result(
    message: o.ToolMessage | o.FunctionMessage, param: str, calls: dict[str, tools.Call], media: parts.Media
) -> tuple[int, g.Part]:
    ext = google.extra(message.extra_content)
    media_parts = None
    if ext.get("parts") is not None:
        media_parts = parts.function_response_parts(ext["parts"], f"{param}.extra_content.google.parts", media)
    return tools.tool_result(message, param, calls, media_parts)


def _text_parts(content: str | list[o.TextPart]) -> list[g.Part]:
    if isinstance(content, str):
        return [g.Part(text=content)] if content else []
    return [g.Part(text=p.text) for p in content if p.text]


def _user_parts(message: o.UserMessage, param: str, media: parts.Media, part_level_detail: bool) -> list[g.Part]:
    if isinstance(message.content, str):
        out = [g.Part(text=message.content)] if message.content else []
    else:
        out = []
        for j, item in enumerate(message.content):
            part = parts.user_part(item, f"{param}.content[{j}]", media, part_level_detail=part_level_detail)
            if part is not None:
                out.append(part)
    _message_extra(out, message.extra_content, param)
    return out


def _assistant_parts(message: o.AssistantMessage, param: str, marker: str | None, calls: dict[str, tools.Call]) -> list[g.Part]:
    ext = google.extra(message.extra_content) if message.extra_content is not UNSET else {}
    explicit = google.thought_flag(ext.get("thought"), f"{param}.extra_content.google.thought")
    out: list[g.Part] = []
    content = message.content
    items: list[tuple[str, object, str]] = []
    if isinstance(content, str):
        items.append((content, None, f"{param}.content"))
    elif isinstance(content, list):
        for j, item in enumerate(content):
            text = item.text if isinstance(item, o.TextPart) else item.refusal
            items.append((text, item.extra_content, f"{param}.content[{j}]"))
    for text, extra_content, where in items:
        part_flag = None
        if extra_content is not None and extra_content is not UNSET:
            part_flag = google.thought_flag(google.extra(extra_content).get("thought"), f"{where}.extra_content.google.thought")
        flag = part_flag if part_flag is not None else explicit
        # An explicit thought flag takes precedence over the tag marker (spec §1.6).
        if flag is None and marker:
            pieces = thinking.split_tagged(text, marker)
        else:
            pieces = [(text, bool(flag))] if text else []
        new = [g.Part(text=piece, thought=True if thought else None) for piece, thought in pieces]
        if new and extra_content is not None and extra_content is not UNSET:
            sig = google.signature(google.extra(extra_content).get("thought_signature"), f"{where}.extra_content.google.thought_signature")
            if sig:
                new[-1].thought_signature = sig
        out.extend(new)
    out.extend(tools.call_parts(message, param, calls))
    sig = google.signature(ext.get("thought_signature"), f"{param}.extra_content.google.thought_signature")
    # Without a part to carry it, a signature is dropped: Gemini rejects empty text parts,
    # and signatures on non-call parts are optional.
    if sig is not None and out and out[-1].thought_signature is None:
        out[-1].thought_signature = sig
    return out


def _message_extra(out: list[g.Part], extra_content: object, param: str) -> None:
    if extra_content is UNSET:
        return
    ext = google.extra(extra_content)
    flag = google.thought_flag(ext.get("thought"), f"{param}.extra_content.google.thought")
    if flag:
        for part in out:
            if part.text is not None and part.thought is None:
                part.thought = True
    sig = google.signature(ext.get("thought_signature"), f"{param}.extra_content.google.thought_signature")
    if sig is not None and out and out[-1].thought_signature is None:
        out[-1].thought_signature = sig


def check_not_empty(contents: list[g.Content]) -> None:
    if not contents:
        raise InvalidRequest("messages must contain at least one user or assistant message", param="messages")
