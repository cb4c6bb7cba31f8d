"""The benchmark runs end to end in its smallest mode and reports a number for every section.

Speed targets live in the benchmark (``python -m bench``), not here: this only proves it still works.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.client import Target
from bench.procs import SYSTEM_CAS, system_trust, trust_setting
from codexd.allocator import has_glibc
from tests.fakes.tls import tls_files

REPO = Path(__file__).resolve().parents[2]


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def test_quick_benchmark_reports_every_section(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    cmd = [
        sys.executable,
        "-m",
        "bench",
        "--quick",
        "--requests",
        "5",
        "--streams",
        "4",
        "--churn",
        "20",
        "--deltas",
        "10",
        "--first-delay",
        "0.02",
        "--json",
        str(out),
    ]
    run = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "Targets" in run.stdout
    data = json.loads(out.read_text())

    assert data["machine"]["pycurl"].startswith("PycURL/") and "libcurl/" in data["machine"]["pycurl"]
    assert _number(data["startup"]["health_s"]) and _number(data["startup"]["version_s"])
    assert _number(data["startup"]["status_s"]) and data["startup"]["status_exit"] in (0, 1, 3)
    if "PYTHONMALLOC" in os.environ:  # the developer's choice is kept
        assert data["startup"]["allocator"] == (os.environ["PYTHONMALLOC"] or "pymalloc")
    else:
        on_glibc = sys.platform == "linux" and has_glibc()
        assert data["startup"]["allocator"] == ("malloc" if on_glibc else "pymalloc")
    assert _number(data["startup"]["idle_rss_kib"]) and data["startup"]["idle_rss_kib"] > 0
    endpoints = {t["endpoint"] for t in data["ttft"]}
    assert {"chat", "responses"} <= endpoints
    if data["messages_available"]:
        large = {"messages 80 KB", "messages 80 KB, turns", "messages 640 KB, turns"}
        assert {*large, "messages 640 KB + 3 sub-agents, turns"} <= endpoints
    assert data["first_delay_s"] == 0.02
    for t in data["ttft"]:
        assert t["codexd"]["errors"] == 0 and t["direct"]["errors"] == 0, t
        assert t["direct_p50_ms"] >= 20 and t["codexd_p50_ms"] >= 20, "the fake waits before the first event"
        for key in ("direct_p50_ms", "codexd_p50_ms", "overhead_p50_ms", "overhead_p99_ms", "header_overhead_p50_ms"):
            assert _number(t[key]), (key, t)
    floors = {row["path"]: row for row in data["floors"]["rows"]}
    assert set(floors) == {"byte relay", "Tornado + curl pass-through", "codexd (chat)"}
    for row in floors.values():
        assert row["errors"] == 0, row
        for key in ("p50_ms", "overhead_p50_ms", "overhead_p99_ms", "cpu_ms_per_request"):
            assert _number(row[key]), (key, row)
    assert data["throughput"]
    for t in data["throughput"]:
        assert t["codexd"]["errors"] == 0, t
        # Messages sends a tool's input whole, in one delta; every other row streams its ten deltas.
        whole = t["answer"] == "tool call" and t["endpoint"] == "messages"
        assert t["deltas_received"] == t["streams"] * (1 if whole else 10), t
        assert _number(t["deltas_per_s"]) and _number(t["cpu_s_per_10k_events"])
        # The rows the events target is checked on run three times and report the median run; errors count in all.
        # A run too short for the CPU clock reports no rate and counts as the fastest.
        runs = t["events_per_cpu_s_runs"]
        repeats = 1 if t["upstream_interval_s"] else 3
        measured = [rate for rate in runs if rate is not None]
        assert len(runs) == repeats and runs == sorted(measured) + [None] * (repeats - len(measured)), t
        assert t["events_per_cpu_s"] == runs[1 if repeats == 3 else 0], t
        assert t["codexd"]["requests"] == t["streams"] * repeats, t
    streamed = {t["endpoint"] for t in data["throughput"]}
    assert {t["endpoint"] for t in data["throughput"] if t["answer"] == "tool call"} == streamed, "a tool row each"
    paced = [t for t in data["throughput"] if t["upstream_interval_s"] > 0]
    assert {t["endpoint"] for t in paced} == streamed, "a paced row each"
    for t in paced:  # ten deltas 2 ms apart: nine gaps after the first
        assert t["after_first_delta_p50_ms"] >= 18, t
    limited = [row["target"] for row in data["targets"] if "events/s" in row["target"]]
    assert len(limited) == len(data["throughput"]) - len(paced), "the events target is for 0 ms between events"
    conc = data["concurrency"]
    assert conc["streams"] == 4 and conc["starved"] == 0 and _number(conc["rss_per_stream_kib"])
    assert data["churn"]["codexd"]["errors"] == 0 and _number(data["churn"]["rss_after_kib"])
    assert _number(data["after_bursts"]["rss_kib"]) and data["after_bursts"]["rss_kib"] > 0
    phases = [name for name, _ in data["rss_timeline"]]
    assert phases.index("churn") < phases.index("throughput"), "requests are counted before the bursts"
    if data["messages_available"]:
        assert phases[-1] == "Claude Code-sized rows, idle", "the conversations kept count in no earlier reading"
        kept = data["conversations_kept"]
        assert _number(kept["rss_before_kib"]) and _number(kept["rss_after_kib"])
    assert data["targets"] and all(t["result"] in ("PASS", "MISS") for t in data["targets"])


needs_two_cpus = pytest.mark.skipif(
    not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2, reason="CPU affinity: Linux, 2 CPUs"
)


@needs_two_cpus
@pytest.mark.skipif(not list(SYSTEM_CAS.glob("*.pem")), reason=f"no CA files in {SYSTEM_CAS}")
@pytest.mark.parametrize("kind", ["file", "dir"])
def test_system_cas_put_the_fakes_ca_among_the_machines(tmp_path: Path, kind: str) -> None:
    """``--system-cas``: the fake's certificate verifies against the copy, which holds the system's CAs too."""
    ca, cert, _ = tls_files(tmp_path)
    trust = system_trust(tmp_path, ca, kind)
    where = ["-CApath", str(trust)] if kind == "dir" else ["-CAfile", str(trust)]
    verify = subprocess.run(["openssl", "verify", *where, str(cert)], capture_output=True, text=True)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    held = len(list(trust.glob("*.pem"))) if kind == "dir" else trust.read_text().count("BEGIN CERTIFICATE")
    assert held == len(list(SYSTEM_CAS.glob("*.pem"))) + 1
    assert trust_setting(trust) == (("ca_dir", "CODEXD_CA_DIR") if kind == "dir" else ("ca_bundle", "CODEXD_CA_BUNDLE"))


def test_pin_gives_codexd_a_cpu_of_its_own_and_the_rest_to_the_others() -> None:
    from bench.procs import pin_cpus

    sleepers = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"]) for _ in range(3)]
    try:
        cpus = sorted(os.sched_getaffinity(0))
        pinned = pin_cpus([sleepers[0].pid], [sleepers[1].pid, sleepers[2].pid])
        assert os.sched_getaffinity(sleepers[0].pid) == {cpus[-1]} == set(pinned["codexd"])
        for other in sleepers[1:]:
            assert os.sched_getaffinity(other.pid) == set(cpus[:-1]) == set(pinned["others"])
    finally:
        for proc in sleepers:
            proc.kill()
            proc.wait()


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="CPU affinity: Linux")
def test_pin_refuses_a_single_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    from bench.procs import pin_cpus

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    with pytest.raises(RuntimeError, match="two CPUs"):
        pin_cpus([os.getpid()], [])


def test_the_turns_row_sends_two_turns_of_one_conversation_in_alternation() -> None:
    from bench.run import SESSION, SESSION_DIRECT, TURNS, TURNS_DIRECT, conversation_turns, large_targets

    shorter, longer = conversation_turns()
    assert len(longer["messages"]) == len(shorter["messages"]) + 2
    assert {k: v for k, v in shorter.items() if k != "messages"} == {k: v for k, v in longer.items() if k != "messages"}
    assert shorter["messages"][:-1] == longer["messages"][:-3], "the same conversation up to the moved mark"
    marked = [m for m in longer["messages"] if "cache_control" in json.dumps(m)]
    assert marked == [longer["messages"][-1]], "Claude Code marks the newest message"
    direct = Target("direct", "https://127.0.0.1:1/backend-api/codex/responses", b"{}", b"delta")
    targets = large_targets("http://127.0.0.1:2", direct)
    sent = [json.loads(targets[TURNS].next_body()) for _ in range(4)]
    assert sent == [shorter, longer, shorter, longer]
    upstream = [json.loads(targets[TURNS_DIRECT].next_body()) for _ in range(4)]
    assert len(upstream[1]["input"]) > len(upstream[0]["input"]) and upstream[2] == upstream[0]
    session = [targets[SESSION].next_body() for _ in range(3)]  # late in a long session: the same, 640 KB
    assert 600_000 < len(session[0]) < len(session[1]) < 700_000 and session[2] == session[0]
    assert json.loads(targets[SESSION_DIRECT].next_body())["input"][:3] == upstream[0]["input"][:3]


def test_the_agents_row_sends_each_agent_its_own_turns_in_turn() -> None:
    from bench.run import AGENTS, AGENTS_DIRECT, SESSION, large_targets

    direct = Target("direct", "https://127.0.0.1:1/backend-api/codex/responses", b"{}", b"delta")
    targets = large_targets("http://127.0.0.1:2", direct)
    sent = [json.loads(targets[AGENTS].next_body()) for _ in range(8)]
    agents = [turn["messages"][0]["content"][0]["text"] for turn in sent]
    assert len(set(agents)) == 4 and agents[:4] == agents[4:], "four agents, each in turn"
    assert [len(turn["messages"]) for turn in sent[4:]] == [len(turn["messages"]) + 2 for turn in sent[:4]]
    assert len({json.dumps(turn["tools"]) for turn in sent}) == 4, "each agent its own tools"
    assert json.dumps(sent[0]).encode() == targets[SESSION].body, "the main agent is the session row's"
    sizes = [len(json.dumps(turn)) for turn in sent[5:8]]
    assert all(190_000 < size < 300_000 for size in sizes) and sum(sizes) + 650_000 > 1 << 20
    upstream = [json.loads(targets[AGENTS_DIRECT].next_body()) for _ in range(8)]
    # Each agent's second turn: a call (after the assistant's text) and its result more.
    assert [len(body["input"]) for body in upstream[4:]] == [len(body["input"]) + 3 for body in upstream[:4]]


def test_the_chat_session_is_the_same_conversation_as_the_messages_one() -> None:
    from bench.client import chat_form
    from bench.run import conversation_turns, direct_of

    turns = conversation_turns(5)
    direct = Target("direct", "https://127.0.0.1:1/backend-api/codex/responses", b"{}", b"delta")
    as_messages = json.loads(direct_of("m", direct, turns[1:]).body)["input"]
    as_chat = json.loads(direct_of("c", direct, [chat_form(turns[1])], chat=True).body)["input"]

    def calls_and_results(items: list[dict[str, Any]]) -> list[tuple[str, str, Any]]:
        return [
            (item["type"], item["call_id"], json.loads(item["arguments"]) if "arguments" in item else item["output"])
            for item in items
            if item["type"] in ("function_call", "function_call_output")
        ]

    assert len(calls_and_results(as_messages)) == 10
    assert calls_and_results(as_chat) == calls_and_results(as_messages)


def test_ab_compares_two_checkouts_row_by_row(tmp_path: Path) -> None:
    out = tmp_path / "ab.json"
    rows = "chat,messages,session,chat session,cli session"
    cmd = [sys.executable, "-m", "bench.ab", str(REPO), "--rows", rows, "--rounds", "2", "--requests", "3"]
    run = subprocess.run([*cmd, "--json", str(out)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    data = json.loads(out.read_text())
    assert [row["row"] for row in data["rows"]] == rows.split(",")
    for row in data["rows"]:
        assert row["errors"] == 0, row
        assert set(row["versions"]) == {"old", "new"}
        for found in row["versions"].values():
            for key in ("overhead", "own", "cpu"):
                assert len(found[key]) == 2 and all(_number(v) for v in found[key]), (row["row"], key, found)
    assert "chat session" in run.stdout


def test_ab_refuses_a_folder_without_codexd(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "bench.ab", str(tmp_path)], cwd=REPO, capture_output=True, text=True, timeout=30
    )
    assert run.returncode == 2 and "holds no codexd/ package" in run.stderr


def test_ab_can_run_the_agents_row_with_more_sub_agents_each_with_its_own_tools() -> None:
    from bench.ab import parse, row_targets

    direct = Target("direct", "https://127.0.0.1:1/backend-api/codex/responses", b"{}", b"delta")
    args = parse([str(REPO), "--rows", "agents", "--sub-agents", "4"])
    via, to, _ = row_targets("agents", "http://127.0.0.1:2", direct, args.sub_agents)
    sent = [json.loads(via.next_body()) for _ in range(10)]
    agents = [turn["messages"][0]["content"][0]["text"] for turn in sent]
    assert len(set(agents)) == 5 and agents[:5] == agents[5:], "the session and four sub-agents, each in turn"
    assert len({json.dumps(turn["tools"]) for turn in sent}) == 5, "each agent its own tools"
    assert len({json.loads(to.next_body())["instructions"] for _ in range(10)}) == 5, "and its own prompt upstream"
