"""Fakes of the outside world for tests: the Codex backend and its token endpoint, on 127.0.0.1."""
