"""Function calling's rules, whoever runs the model: the names a function may have, and the
ids of calls chatgate makes up.

Shared by the translators (OpenAI ``tools`` → Gemini declarations) and the local engine
(which checks the declarations it is given), so a bad name gets the same 400 on either path.
"""

from __future__ import annotations

import re
import uuid

from chatgate.errors import InvalidRequest

# Gemini's rule for FunctionDeclaration.name.
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:\-]{0,63}$")
# The shape Vertex gives the ids it makes (``function-call-<uuid4>``); chatgate makes the same.
_MADE_UP_ID = re.compile(r"^function-call-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def check_name(name: str, param: str, seen: set[str]) -> None:
    """Refuse a name that breaks the rule or is in ``seen`` (the names declared before it);
    add it to ``seen``. ``param`` is the name's JSON path."""
    if not _NAME.match(name):
        raise InvalidRequest(
            f"invalid function name {name!r}: names start with a letter or an underscore and hold "
            "at most 64 letters, digits, underscores, dots, colons or dashes",
            param=param,
        )
    if name in seen:
        raise InvalidRequest(f"function `{name}` is declared twice", param=param)
    seen.add(name)


def unknown_choice(name: str, param: str = "tool_choice") -> InvalidRequest:
    """The error for a tool choice naming a function that was not declared."""
    return InvalidRequest(f"tool_choice names `{name}`, which is not among the declared functions", param=param)


def no_functions(param: str = "tool_choice") -> InvalidRequest:
    """The error for a tool choice that asks for a call when no function is declared."""
    return InvalidRequest("tool_choice asks for a function call, but no functions are declared in tools", param=param)


def new_call_id() -> str:
    return f"function-call-{uuid.uuid4()}"


def made_up(call_id: str) -> bool:
    """Whether ``call_id`` has the shape of an id chatgate (or Vertex) made up."""
    return _MADE_UP_ID.match(call_id) is not None
