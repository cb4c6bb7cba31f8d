"""codexd: serve a ChatGPT/Codex login as OpenAI- and Anthropic-compatible HTTP endpoints."""

__version__ = "0.1.0"
