"""The real Claude Code CLI, offline, against codexd and the fake backend: it runs a tool, then answers."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.scripts import Builder, Script

CLAUDE = os.environ.get("CODEXD_CLAUDE_BIN") or shutil.which("claude")
pytestmark = pytest.mark.skipif(
    CLAUDE is None, reason="Claude Code is not installed (npm install @anthropic-ai/claude-code); .ci/run installs it"
)
MARKER = "zebra-quartz-4417"


def claude_backend(notes: Path) -> Any:
    """Answers like a model driving Claude Code: read the notes file, then report what it says."""

    def choose(body: Any) -> Script | None:
        items = body.get("input", []) if isinstance(body, dict) else []
        outputs = [i for i in items if i.get("type") == "function_call_output"]
        if outputs:
            text = outputs[-1]["output"]
            text = text if isinstance(text, str) else " ".join(p.get("text", "") for p in text)
            word = MARKER if MARKER in text else "nothing"
            return Script.events(Builder().start().text(f"The notes file says {word}.").completed())
        tools = {t.get("name") for t in body.get("tools", []) if isinstance(t, dict)}
        if "Read" in tools:
            args = f'{{"file_path": "{notes}"}}'
            return Script.events(
                Builder().start().reasoning(["Reading the notes."]).tool_calls([("Read", args)]).completed()
            )
        return Script.events(Builder().start().text('{"title": "Notes", "isNewTopic": true}').completed())

    return choose


def test_claude_code_runs_a_tool_through_codexd(live, tmp_path):
    work = tmp_path / "project"
    work.mkdir()
    notes = work / "notes.txt"
    notes.write_text(f"The secret word is {MARKER}.\n")
    live.backend.state.chooser = claude_backend(notes)
    home = tmp_path / "home"
    home.mkdir()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "ANTHROPIC_BASE_URL": live.url,
        "ANTHROPIC_API_KEY": "sk-ant-test-anything",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
    }
    run = subprocess.run(
        [
            CLAUDE,
            "-p",
            "What does notes.txt say? Use the Read tool.",
            "--allowedTools",
            "Read",
            "--output-format",
            "text",
        ],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-2000:] + run.stdout[-2000:]
    assert f"The notes file says {MARKER}." in run.stdout
    posts = live.backend.state.posts
    with_output = [p.body for p in posts if any(i.get("type") == "function_call_output" for i in p.body["input"])]
    assert with_output, "Claude Code never sent the tool result back"
    call = [i for i in with_output[-1]["input"] if i.get("type") == "function_call"][-1]
    assert call["name"] == "Read"
    for body in (p.body for p in posts):
        assert body["store"] is False and body["stream"] is True
        assert not {"max_tokens", "temperature", "max_output_tokens"} & set(body)
