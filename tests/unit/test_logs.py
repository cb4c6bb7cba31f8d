"""Logging: text and JSON lines, journald priorities, and secrets masked at every level."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from codexd.logs import HANDLER_NAME, REDACTOR, RedactingFilter, setup_logging
from tests.fakes.tokens import make_jwt

LEVELS = (logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL)


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, RedactingFilter, io.StringIO]]:
    """A logger whose only handler writes to a buffer through a fresh redaction filter."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    redactor = RedactingFilter()
    handler.addFilter(redactor)
    logger = logging.getLogger("codexd.test_logs.redaction")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, redactor, stream
    logger.removeHandler(handler)


@pytest.fixture
def root_logging(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Callable[[], Path]]:
    """Call it in the test (pytest re-captures stderr between phases) to make ``sys.stderr`` a file.

    The root logger's codexd handler is removed afterwards.
    """
    path = tmp_path / "stderr.log"
    root = logging.getLogger()
    level, access = root.level, logging.getLogger("tornado.access").level
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    monkeypatch.delenv("XPC_SERVICE_NAME", raising=False)
    with path.open("w", encoding="utf-8") as fake_stderr:

        def redirect() -> Path:
            monkeypatch.setattr(sys, "stderr", fake_stderr)
            return path

        try:
            yield redirect
        finally:
            for handler in list(root.handlers):
                if handler.get_name() == HANDLER_NAME:
                    root.removeHandler(handler)
            root.setLevel(level)
            logging.getLogger("tornado.access").setLevel(access)


def emit_sample() -> None:
    logger = logging.getLogger("codexd.sample")
    logger.debug("debug line")
    logger.info("listening on %s:%d", "127.0.0.1", 8765)
    logger.warning("upstream slow")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logger.exception("unexpected error")
    sys.stderr.flush()


# --- redaction ----------------------------------------------------------------------------------------

JWT = make_jwt(exp=1_900_000_000)


@pytest.mark.parametrize(
    ("message", "secret"),
    [
        (f"token {JWT} expired", JWT),
        (f"headers: {{'Authorization': 'Bearer {JWT}'}}", JWT),
        ("Authorization: Bearer xyz-opaque-token", "xyz-opaque-token"),
        ("authorization: bearer lowercase-secret", "lowercase-secret"),
        ("OPENAI_API_KEY=sk-proj-AbCdEf0123456789xyz in environment", "sk-proj-AbCdEf0123456789xyz"),
        ("key sk-abcdefghijklmnop rejected", "sk-abcdefghijklmnop"),
        ("POST body grant_type=refresh_token&refresh_token=rt-opaque-9876&client_id=x", "rt-opaque-9876"),
        ('b\'{"grant_type": "refresh_token", "refresh_token": "rt-json-5555"}\'', "rt-json-5555"),
    ],
)
@pytest.mark.parametrize("level", LEVELS, ids=logging.getLevelName)
def test_secret_shaped_strings_never_reach_the_output(
    captured: tuple[logging.Logger, RedactingFilter, io.StringIO], message: str, secret: str, level: int
) -> None:
    logger, _, stream = captured
    logger.log(level, "%s", message)
    out = stream.getvalue()
    assert secret not in out
    assert "[REDACTED]" in out


def test_the_surrounding_text_survives(captured: tuple[logging.Logger, RedactingFilter, io.StringIO]) -> None:
    logger, _, stream = captured
    logger.info("GET /v1/models Authorization: Bearer abc123secret -> 401 [req_1]")
    logger.info("refresh_token=rt-1&client_id=app_x")
    assert stream.getvalue() == (
        "INFO GET /v1/models Authorization: Bearer [REDACTED] -> 401 [req_1]\n"
        "INFO refresh_token=[REDACTED]&client_id=app_x\n"
    )


def test_registered_secrets_are_masked_wherever_they_appear(
    captured: tuple[logging.Logger, RedactingFilter, io.StringIO],
) -> None:
    logger, redactor, stream = captured
    redactor.add("local-key-123456", "opaque-access-value", "")
    logger.debug("x-api-key=%s", "local-key-123456")
    logger.warning("headers %r", {"x-api-key": "local-key-123456", "token": "opaque-access-value"})
    logger.error("wrong key: %s", "local-key-123456-but-longer")
    out = stream.getvalue()
    assert "local-key-123456" not in out
    assert "opaque-access-value" not in out
    assert out.count("[REDACTED]") == 4
    assert len(out.splitlines()) == 3


def test_registering_an_empty_key_masks_nothing(captured: tuple[logging.Logger, RedactingFilter, io.StringIO]) -> None:
    logger, redactor, stream = captured
    redactor.add("")  # what serve does when no api key is configured
    logger.info("codexd listening on 127.0.0.1:8765")
    assert stream.getvalue() == "INFO codexd listening on 127.0.0.1:8765\n"


def test_a_longer_secret_is_not_left_half_masked(captured: tuple[logging.Logger, RedactingFilter, io.StringIO]) -> None:
    logger, redactor, stream = captured
    redactor.add("abcdef", "abcdef-ghijkl-mnopqr")
    logger.info("key abcdef-ghijkl-mnopqr")
    assert stream.getvalue() == "INFO key [REDACTED]\n"


def test_tracebacks_are_masked_too(captured: tuple[logging.Logger, RedactingFilter, io.StringIO]) -> None:
    logger, redactor, stream = captured
    redactor.add("local-key-123456")
    try:
        raise ValueError(f"bad header Bearer {JWT} and key local-key-123456")
    except ValueError:
        logger.exception("request failed")
    out = stream.getvalue()
    assert "Traceback" in out and "ValueError" in out
    assert JWT not in out and "local-key-123456" not in out


def test_a_malformed_log_call_does_not_raise(captured: tuple[logging.Logger, RedactingFilter, io.StringIO]) -> None:
    logger, redactor, stream = captured
    redactor.add("local-key-123456")
    logger.info("two values %s %s", "local-key-123456")  # one argument short
    out = stream.getvalue()
    assert "two values" in out and "local-key-123456" not in out


# --- formats ------------------------------------------------------------------------------------------


def test_text_lines_have_time_level_and_logger(root_logging: Callable[[], Path]) -> None:
    path = root_logging()
    setup_logging("info", "text")
    emit_sample()
    lines = path.read_text(encoding="utf-8").splitlines()
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO codexd.sample: listening on 127.0.0.1:8765", lines[0]
    )
    assert "debug line" not in "\n".join(lines)  # below the level
    assert any(line.endswith("WARNING codexd.sample: upstream slow") for line in lines)
    assert "RuntimeError: boom" in lines[-1]


def test_json_lines_are_one_object_each(root_logging: Callable[[], Path]) -> None:
    path = root_logging()
    setup_logging("debug", "json")
    emit_sample()
    entries = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [(e["level"], e["logger"], e["message"]) for e in entries] == [
        ("debug", "codexd.sample", "debug line"),
        ("info", "codexd.sample", "listening on 127.0.0.1:8765"),
        ("warning", "codexd.sample", "upstream slow"),
        ("error", "codexd.sample", "unexpected error"),
    ]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entries[0]["ts"])
    assert "RuntimeError: boom" in entries[-1]["exception"]


def test_under_journald_each_line_has_a_priority_and_no_time(
    root_logging: Callable[[], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = root_logging()
    st = os.fstat(sys.stderr.fileno())
    monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}")
    setup_logging("debug", "text")
    emit_sample()
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[:4] == [
        "<7>codexd.sample: debug line",
        "<6>codexd.sample: listening on 127.0.0.1:8765",
        "<4>codexd.sample: upstream slow",
        "<3>codexd.sample: unexpected error",
    ]
    assert len(lines) > 5  # the traceback follows, one journal entry per line, each at error priority
    assert all(line.startswith("<3>") for line in lines[3:])
    assert not any(re.search(r"\d\d:\d\d:\d\d", line) for line in lines)


def test_journal_stream_of_another_file_means_plain_text(
    root_logging: Callable[[], Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    other = os.stat(tmp_path)
    monkeypatch.setenv("JOURNAL_STREAM", f"{other.st_dev}:{other.st_ino}")  # inherited, but stderr was redirected
    path = root_logging()
    setup_logging("info", "text")
    emit_sample()
    assert not path.read_text(encoding="utf-8").startswith("<")


def test_setup_twice_keeps_one_handler_and_redacts(root_logging: Callable[[], Path]) -> None:
    path = root_logging()
    setup_logging("info", "text")
    setup_logging("warning", "text")
    REDACTOR.add("setup-registered-key-42")
    logging.getLogger("codexd.sample").warning("key setup-registered-key-42 and Bearer abcdefgh")
    logging.getLogger("codexd.sample").info("quiet now")
    sys.stderr.flush()
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1
    assert lines[0].endswith("codexd.sample: key [REDACTED] and Bearer [REDACTED]")
