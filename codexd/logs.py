"""Logging set-up: text or JSON lines, journald priorities, a macOS log file, and secret redaction.

Under journald (``JOURNAL_STREAM`` names our stderr) lines carry a ``<N>`` syslog priority prefix and no
timestamp, since the journal adds its own. Under launchd on macOS, logs go to a rotating file in
``~/Library/Logs/codexd/`` that ``codexd logs`` reads. Every record passes a redaction filter, so a token
or api key that slips into a message never reaches the output.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

LAUNCHD_LABEL = "io.github.codexd"
HANDLER_NAME = "codexd"  # the root handler setup_logging owns (replaced on reload)
MAC_LOG_FILE = Path.home() / "Library" / "Logs" / "codexd" / "codexd.log"
_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}
_SECRET_PATTERNS = (
    re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"),  # JWTs
    re.compile(r"(?i)(bearer\s+)[^\s,;\"']+"),
    re.compile(r"\bsk-[A-Za-z0-9_-]{8,}"),
    re.compile(r"(?i)(refresh_token[\"']?\s*[:=]\s*[\"']?)[^\s,;\"'&]+"),
)


class RedactingFilter(logging.Filter):
    """Replaces known secrets and secret-shaped strings in the final message with ``[REDACTED]``."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def add(self, *secrets: str) -> None:
        """Also redact these exact strings (api keys, tokens read from disk)."""
        self.secrets.update(s for s in secrets if s and len(s) >= 6)

    def redact(self, text: str) -> str:
        """``text`` with every secret masked."""
        for secret in sorted(self.secrets, key=len, reverse=True):  # a secret may contain a shorter one
            if secret in text:
                text = text.replace(secret, "[REDACTED]")
        for pattern in _SECRET_PATTERNS:
            text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + "[REDACTED]", text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a bad format call: still log it (redacted) rather than raise
            message = f"{record.msg} {record.args!r}"
        record.msg, record.args = self.redact(message), None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = self.redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


REDACTOR = RedactingFilter()


class JournalFormatter(logging.Formatter):
    """``<N>logger: message``: journald reads the priority and stamps the time itself.

    journald makes one entry per line, so every line (traceback lines too) carries the prefix.
    """

    def format(self, record: logging.LogRecord) -> str:
        text = f"{record.name}: {record.getMessage()}"
        if record.exc_text:
            text += "\n" + record.exc_text
        prefix = f"<{_PRIORITY.get(record.levelno, 6)}>"
        return "\n".join(prefix + line for line in text.splitlines() or [""])


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False)


def under_journald() -> bool:
    """True when stderr is connected to the journal (``JOURNAL_STREAM`` is ``dev:inode`` of stderr)."""
    stream = os.environ.get("JOURNAL_STREAM", "")
    try:
        dev, ino = (int(x) for x in stream.split(":"))
        st = os.fstat(sys.stderr.fileno())
    except (ValueError, OSError):
        return False
    return (st.st_dev, st.st_ino) == (dev, ino)


def under_launchd() -> bool:
    """True when launchd started us from codexd's agent plist."""
    return sys.platform == "darwin" and os.environ.get("XPC_SERVICE_NAME") == LAUNCHD_LABEL


def setup_logging(level: str = "info", fmt: str = "text") -> None:
    """Configure the root logger once for ``serve``; safe to call again (on reload)."""
    root = logging.getLogger()
    for old in list(root.handlers):
        if old.get_name() == HANDLER_NAME:
            root.removeHandler(old)
    handler: logging.Handler
    if under_launchd():
        MAC_LOG_FILE.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(MAC_LOG_FILE, maxBytes=10 << 20, backupCount=3)
    else:
        handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    elif under_journald():
        handler.setFormatter(JournalFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(REDACTOR)
    handler.set_name(HANDLER_NAME)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.getLogger("tornado.access").setLevel(logging.WARNING)
