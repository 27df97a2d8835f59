"""Gemini on Vertex AI or the Gemini Developer API (``engine.py``), with its credentials
(``auth.py``), SSE reader (``sse.py``) and error mapping (``errors.py``)."""

from chatgate.engines.gemini.engine import SETUP_HINT, GeminiEngine, endpoint, is_configured

__all__ = ["SETUP_HINT", "GeminiEngine", "endpoint", "is_configured"]
