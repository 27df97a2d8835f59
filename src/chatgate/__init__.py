"""chatgate: a self-hosted Vertex AI Chat Completions API."""

__version__ = "0.1.0"
