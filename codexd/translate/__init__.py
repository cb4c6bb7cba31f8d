"""Pure translators between client dialects and the Codex backend's Responses API (no I/O)."""
