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

from chatgate.errors import InvalidRequest
from chatgate.protocols import gemini as g
from chatgate.protocols import openai as o
from chatgate.translate import parts, thinking, tools
from chatgate.translate.google import NO_EXTRA, NO_MESSAGE_EXTRAS, Extra, MessageExtras


def contents(
    messages: list[o.Message],
    extras: tuple[MessageExtras, ...],
    media: parts.Media,
    *,
    marker: str | None,
    part_level_detail: bool,
) -> tuple[list[g.Part], list[g.Content]]:
    """``extras``: the messages' Google extensions, decoded (``google.message_extras``)."""
    system: list[g.Part] = []
    out: list[g.Content] = []
    calls: dict[str, tools.Call] = {}
    i = 0
    while i < len(messages):
        message, param = messages[i], f"messages[{i}]"
        # The commonest roles are tested first: isinstance is cheap on a match only.
        if isinstance(message, o.UserMessage):
            role, new = "user", _user_parts(message, param, _at(extras, i), media, part_level_detail)
        elif isinstance(message, o.AssistantMessage):
            calls = {}
            role, new = "model", _assistant_parts(message, param, _at(extras, i), marker, calls)
        elif isinstance(message, (o.SystemMessage, o.DeveloperMessage)):
            system.extend(_text_parts(message.content))
            i += 1
            continue
        else:  # a run of tool (or function) results: one turn
            results: list[tuple[int, g.Part]] = []
            while i < len(messages) and isinstance(result := messages[i], (o.ToolMessage, o.FunctionMessage)):
                results.append(_result(result, f"messages[{i}]", _at(extras, i), calls, media))
                i += 1
            results.sort(key=lambda r: r[0])  # stable: call order, then message order
            out.append(g.Content(role="user", parts=[part for _, part in results]))
            continue
        i += 1
        if not new:
            continue
        last = out[-1] if out else None
        if last is not None and last.role == role and not _has_results(last):
            last.parts.extend(new)
        else:
            out.append(g.Content(role=role, parts=new))
    return system, out


def _at(extras: tuple[MessageExtras, ...], i: int) -> MessageExtras:
    return extras[i] if extras else NO_MESSAGE_EXTRAS


def _has_results(content: g.Content) -> bool:
    return any(p.function_response is not None for p in content.parts)


def _result(
    message: o.ToolMessage | o.FunctionMessage,
    param: str,
    extras: MessageExtras,
    calls: dict[str, tools.Call],
    media: parts.Media,
) -> tuple[int, g.Part]:
    if extras.parts:
        where = f"{param}.extra_content.google.parts"
        for k, part in enumerate(extras.parts):
            if part.inline_data is not None:
                media.add_inline(part.inline_data.data, f"{where}[{k}]")
    return tools.tool_result(message, param, calls, extras.parts)


def _text_parts(content: str | list[o.TextPart]) -> list[g.Part]:
    if isinstance(content, str):
        return [g.Part(text=content)] if content else []
    return [g.Part(text=p.text) for p in content if p.text]


def _user_parts(
    message: o.UserMessage, param: str, extras: MessageExtras, media: parts.Media, part_level_detail: bool
) -> list[g.Part]:
    if isinstance(message.content, str):
        out = [g.Part(text=message.content)] if message.content else []
    else:
        out = []
        for j, item in enumerate(message.content):
            part = parts.user_part(item, f"{param}.content[{j}]", media, part_level_detail=part_level_detail)
            if part is not None:
                _mark(part, extras.part(j))
                out.append(part)
    own = extras.own
    if own.thought:
        for part in out:
            if part.text is not None and part.thought is None:
                part.thought = True
    _sign_last(out, own.thought_signature)
    return out


def _mark(part: g.Part, extra: Extra) -> None:
    """A part's own ``thought`` and ``thought_signature`` onto it."""
    if extra.thought is not None:
        part.thought = extra.thought or None
    if extra.thought_signature is not None:
        part.thought_signature = extra.thought_signature


def _sign_last(out: list[g.Part], signature: str | None) -> None:
    """A message-level signature goes on the message's last part, unless that part has its
    own. Without a part to carry it, it is dropped: Gemini rejects empty text parts, and
    signatures on non-call parts are optional."""
    if signature is not None and out and out[-1].thought_signature is None:
        out[-1].thought_signature = signature


def _assistant_parts(
    message: o.AssistantMessage, param: str, extras: MessageExtras, marker: str | None, calls: dict[str, tools.Call]
) -> list[g.Part]:
    texts: list[tuple[str, Extra]] = []
    if isinstance(message.content, str):
        texts.append((message.content, NO_EXTRA))
    elif isinstance(message.content, list):
        for j, item in enumerate(message.content):
            texts.append((item.text if isinstance(item, o.TextPart) else item.refusal, extras.part(j)))
    out: list[g.Part] = []
    for text, extra in texts:
        flag = extra.thought if extra.thought is not None else extras.own.thought
        # An explicit thought flag takes precedence over the tag marker (spec §1.6).
        if flag is None and marker:
            pieces = thinking.split_tagged(text, marker)
        else:
            pieces = [(text, bool(flag))] if text else []
        new = [g.Part(text=piece, thought=True if thought else None) for piece, thought in pieces]
        if new and extra.thought_signature is not None:
            new[-1].thought_signature = extra.thought_signature
        out.extend(new)
    out.extend(tools.call_parts(message, param, extras, calls))
    _sign_last(out, extras.own.thought_signature)
    return out


def check_not_empty(contents: list[g.Content]) -> None:
    if not contents:
        raise InvalidRequest("messages must contain at least one user or assistant message", param="messages")
