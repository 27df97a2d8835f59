"""What a native Gemini request must hold beyond its types: the checks Google makes before
any model runs, so every engine refuses the same body with the same 400 naming the field
(in the wire's camelCase, as Google's messages do)."""

from __future__ import annotations

from chatgate.errors import InvalidRequest
from chatgate.protocols import gemini as g

ROLES = ("user", "model")
MAX_CANDIDATES = 8  # Vertex's candidateCount limit
MAX_STOP_SEQUENCES = 5
INT32 = 2**31 - 1

# Google's ranges: (low, high), either end open when None.
_RANGES: dict[str, tuple[float | None, float | None]] = {
    "temperature": (0.0, 2.0),
    "top_p": (0.0, 1.0),
    "top_k": (1.0, None),
    "candidate_count": (1, MAX_CANDIDATES),
    "max_output_tokens": (1, INT32),
    "presence_penalty": (-2.0, 2.0),
    "frequency_penalty": (-2.0, 2.0),
    "seed": (-(2**31), INT32),
}

_DATA = (
    "text",
    "inline_data",
    "file_data",
    "function_call",
    "function_response",
    "executable_code",
    "code_execution_result",
)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word.capitalize() for word in rest)


def check_generate(request: g.GenerateContentRequest) -> None:
    """A 400 for a ``generateContent`` body no model could answer."""
    if not request.contents:
        raise InvalidRequest("`contents` must hold at least one content", param="contents")
    check_contents(request.contents)
    if request.system_instruction is not None:
        _check_parts(request.system_instruction.parts, "systemInstruction", allow_empty=True)
    if request.generation_config is not None:
        check_config(request.generation_config)


def check_count(request: g.CountTokensRequest) -> g.GenerateContentRequest:
    """The request a ``countTokens`` body counts, checked: contents may be empty."""
    counted = request.as_request()
    where = "generateContentRequest." if request.generate_content_request is not None else ""
    try:
        check_contents(counted.contents)
        if counted.generation_config is not None:
            check_config(counted.generation_config)
    except InvalidRequest as exc:
        param = f"{where}{exc.param}" if exc.param else None
        raise InvalidRequest(exc.message.replace(f"`{exc.param}`", f"`{param}`"), param=param) from None
    return counted


def check_contents(contents: list[g.Content]) -> None:
    for i, content in enumerate(contents):
        where = f"contents[{i}]"
        if content.role is not None and content.role not in ROLES:
            raise InvalidRequest(
                f'`{where}.role` must be "user" or "model", not {content.role!r}', param=f"{where}.role"
            )
        _check_parts(content.parts, where, allow_empty=False)


def _check_parts(parts: list[g.Part], where: str, *, allow_empty: bool) -> None:
    if not parts and not allow_empty:
        raise InvalidRequest(f"`{where}.parts` must hold at least one part", param=f"{where}.parts")
    for j, part in enumerate(parts):
        if not any(getattr(part, name) is not None for name in _DATA):
            names = ", ".join(_camel(name) for name in _DATA)
            raise InvalidRequest(f"`{where}.parts[{j}]` needs one of {names}", param=f"{where}.parts[{j}]")


def check_config(config: g.GenerationConfig) -> None:
    for name, (low, high) in _RANGES.items():
        value = getattr(config, name)
        if value is None:
            continue
        param = f"generationConfig.{_camel(name)}"
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f"at least {low:g}" if high is None else f"between {low:g} and {high:g}"
            raise InvalidRequest(f"`{param}` must be {bounds}, not {value:g}", param=param)
    stops = config.stop_sequences or []
    if len(stops) > MAX_STOP_SEQUENCES:
        raise InvalidRequest(
            f"`generationConfig.stopSequences` may hold at most {MAX_STOP_SEQUENCES} strings, not {len(stops)}",
            param="generationConfig.stopSequences",
        )
    if config.response_schema is not None and config.response_json_schema is not None:
        raise InvalidRequest(
            "set one of `generationConfig.responseSchema` and `generationConfig.responseJsonSchema`, not both",
            param="generationConfig.responseJsonSchema",
        )
