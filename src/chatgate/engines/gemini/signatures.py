"""Thought signatures for histories Gemini did not produce (``skip_thought_signature_validator``).

Gemini 3 rejects a function call of the current turn that comes back without the
``thoughtSignature`` Gemini gave it. A history written elsewhere (another model, a local
one, a client that dropped the field) has none; Google's documented last resort is the
dummy signature ``g.SKIP_THOUGHT_SIGNATURE``. The Gemini engine applies it when the
``gemini.skip_thought_signature_validator`` setting is on.
"""

from __future__ import annotations

from chatgate.protocols import gemini as g


def fill_missing_signatures(request: g.GenerateContentRequest) -> int:
    """Give the first function call of each model step of the current turn the dummy
    signature when the step carries none. The current turn starts after the last user
    content that holds something other than function responses. Changes ``request`` in
    place; returns how many parts were changed."""
    start = 0
    for i, content in enumerate(request.contents):
        if content.role == "user" and any(p.function_response is None for p in content.parts):
            start = i + 1
    changed = 0
    for content in request.contents[start:]:
        if content.role != "model":
            continue
        calls = [p for p in content.parts if p.function_call is not None]
        if calls and not any(p.thought_signature for p in calls):
            calls[0].thought_signature = g.SKIP_THOUGHT_SIGNATURE
            changed += 1
    return changed
