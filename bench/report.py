"""The printed table, the issue's targets (PASS/MISS) and the cProfile summary."""

from __future__ import annotations

import pstats
from pathlib import Path
from typing import Any


def targets(out: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target of the issue with its measured value and PASS/MISS."""
    rows: list[dict[str, Any]] = []

    def add(name: str, value: Any, limit: float, below: bool = True) -> None:
        ok = value is not None and (value <= limit if below else value >= limit)
        rows.append({"target": name, "value": value, "limit": limit, "result": "PASS" if ok else "MISS"})

    for t in out.get("ttft", []):
        if t["background_streams"] and t["endpoint"] != "responses":
            label = f"{t['endpoint']} TTFT overhead %s ms ({t['background_streams']} streams open)"
            add(label % "p50", t["overhead_p50_ms"], 1.0)
            add(label % "p99", t["overhead_p99_ms"], 5.0)
        elif "KB" in t["endpoint"]:  # the Claude Code-sized request: the same limit, one request at a time
            add(f"{t['endpoint']} TTFT overhead p50 ms (one at a time)", t["overhead_p50_ms"], 1.0)
    for t in out.get("throughput", []):
        if t["upstream_interval_s"]:
            continue  # the target is for events sent as fast as the fake can (0 ms between them)
        add(
            f"{_throughput_row(t)} translated events/s per core ({t['clients']} clients)",
            t["events_per_cpu_s"],
            30_000,
            below=False,
        )
    c = out.get("concurrency")
    if c:
        add(f"{c['streams']} open streams: starved", c["starved"], 0)
        add(f"{c['streams']} open streams: RSS KiB per stream", c["rss_per_stream_kib"], 64)
    s = out["startup"]
    # The limit is 50 MB: compared in decimal megabytes (50 MB is 47.7 MiB).
    add("idle RSS after start, MB", _mb(s["idle_rss_kib"]), 50)
    if "churn" in out:
        add(
            f"idle RSS after {out['churn']['requests']} requests (32 at a time), MB",
            _mb(out["churn"]["rss_after_kib"]),
            50,
        )
    if "after_bursts" in out:
        clients = max((t["clients"] for t in out.get("throughput", [])), default=0)
        add(f"idle RSS after the bursts of {clients} streams, MB", _mb(out["after_bursts"]["rss_kib"]), 50)
    if "rest" in out:
        rest = out["rest"]
        add(f"idle RSS {rest['idle_s']:.0f} s after the last request, MB", _mb(rest["rss_kib"]), 50)
    add("start-up to /health, s", s["health_s"], 0.5)
    add("codexd --version, s", s["version_s"], 0.3)
    if "status_s" in s:
        reached = "" if s["status_exit"] in (0, 3) else " (no service manager answered)"
        add(f"codexd status, s{reached}", s["status_s"], 0.3)
    return rows


def _throughput_row(t: dict[str, Any]) -> str:
    """A throughput row's name: the endpoint, and what the answer was when not text."""
    return t["endpoint"] if t.get("answer", "text") == "text" else f"{t['endpoint']}, {t['answer']}"


def _trust(system_cas: str | None) -> str:
    """Which CAs codexd verified the fake against (``--system-cas``)."""
    if system_cas is None:
        return "the fake's CA alone"
    return "the fake's CA among the system's, as " + ("one bundle" if system_cas == "file" else "a hashed directory")


def _mb(kib: int) -> float:
    """KiB (as /proc gives them) in decimal megabytes, one decimal."""
    return round(kib * 1024 / 1e6, 1)


def _runs(rates: list[float | None]) -> str:
    """Every run's events per CPU second, when there was more than one (``-``: too short to measure)."""
    return " / ".join("-" if rate is None else f"{rate:,.0f}" for rate in rates) if len(rates) > 1 else ""


def _table(title: str, header: list[str], rows: list[list[Any]]) -> None:
    print(f"\n== {title}")
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=False)]
    for row in [header, *rows]:
        print("  ".join(str(x).rjust(w) for x, w in zip(row, widths, strict=False)))


def print_report(out: dict[str, Any]) -> None:
    """Everything in ``out`` as plain tables."""
    m = out["machine"]
    print(
        f"codexd benchmark — {m['nproc']} CPU(s), {m['cpu']}, Python {m['python']}, {m.get('pycurl', '')}, "
        f"load at start {m['load_avg_at_start']}, fd limit {out['fd_limit']}, quick={out['quick']}, "
        f"upstream {'HTTP/2' if out.get('upstream_http2') else 'HTTP/1.1'}, "
        f"first event of a TTFT answer after {out.get('first_delay_s', 0.0)} s, "
        f"codexd trusts {_trust(out.get('system_cas'))}"
    )
    pinned = out.get("pinned")
    if pinned:
        print(
            f"pinned: codexd and the stand-ins on CPU {pinned['codexd']}, "
            f"the fake and the load generator on {pinned['others']}"
        )
    s = out["startup"]
    print(
        f"start-up to /health {s['health_s']} s (runs {s['all_s']}), --version {s['version_s']} s, "
        f"status {s.get('status_s')} s (exit {s.get('status_exit')}), "
        f"idle RSS {s['idle_rss_kib']} KiB, Python's objects on {s.get('allocator', 'pymalloc')}"
    )
    if not out.get("messages_available"):
        print("TODO: /v1/messages is not wired in codexd yet (404): messages TTFT and throughput not measured")
    if out.get("ttft"):
        _table(
            "TTFT (ms; direct = fake's first output_text.delta, codexd = first content delta; conc = closed-loop"
            " clients, > 1 saturates the machine so it includes queueing; bg = paced streams kept open in codexd)",
            [
                "endpoint",
                "conc",
                "bg",
                "n",
                "direct p50",
                "p99",
                "codexd p50",
                "p99",
                "overhead p50",
                "p99",
                "hdr p50",
                "hdr p99",
                "errors",
            ],
            [
                [
                    t["endpoint"],
                    t["concurrency"],
                    t["background_streams"],
                    t["requests"],
                    t["direct_p50_ms"],
                    t["direct_p99_ms"],
                    t["codexd_p50_ms"],
                    t["codexd_p99_ms"],
                    t["overhead_p50_ms"],
                    t["overhead_p99_ms"],
                    t["header_overhead_p50_ms"],
                    t["header_overhead_p99_ms"],
                    t["direct"]["errors"] + t["codexd"]["errors"],
                ]
                for t in out["ttft"]
            ],
        )
    f = out.get("floors")
    if f:
        _table(
            f"What a hop costs here: lone chat TTFT through stand-in proxies that do none of codexd's work, in turn "
            f"with codexd and the direct path (direct p50 {f['direct_p50_ms']} ms, p99 {f['direct_p99_ms']} ms; "
            "CPU per request covers the whole answer)",
            ["path", "n", "p50", "p99", "overhead p50", "p99", "CPU ms/request", "errors"],
            [
                [
                    r["path"],
                    f["requests"],
                    r["p50_ms"],
                    r["p99_ms"],
                    r["overhead_p50_ms"],
                    r["overhead_p99_ms"],
                    r["cpu_ms_per_request"],
                    r["errors"],
                ]
                for r in f["rows"]
            ],
        )
    if out.get("throughput"):
        _table(
            "Streaming throughput (deltas/s: content deltas as the clients received them; a Messages tool call's input"
            " goes out in one input_json_delta when the call is complete, so that row counts one delta a stream;"
            " rows run more than once show the median run, and every run's events/CPU s)",
            [
                "endpoint",
                "clients",
                "event gap ms",
                "streams",
                "deltas/s codexd",
                "deltas/s direct",
                "codexd CPU s",
                "CPU s/10k ev",
                "events/CPU s",
                "runs",
                "errors",
            ],
            [
                [
                    _throughput_row(t),
                    t["clients"],
                    round(t["upstream_interval_s"] * 1000, 1),
                    t["streams"],
                    t["deltas_per_s"],
                    t["direct_deltas_per_s"],
                    t["codexd_cpu_s"],
                    t["cpu_s_per_10k_events"],
                    t["events_per_cpu_s"],
                    _runs(t.get("events_per_cpu_s_runs", [])),
                    t["codexd"]["errors"],
                ]
                for t in out["throughput"]
            ],
        )
    c = out.get("concurrency")
    if c:
        print(f"\n== {c['streams']} open streams, upstream event every {c['upstream_interval_s']} s")
        print(
            f"progressed (>= 2 frames) within {c['deadline_s']} s: {c['progressed']}, starved {c['starved']}, "
            f"all after {c['all_progressed_after_s']} s; 2nd frame p50 {c['second_frame_p50_s']} s, "
            f"max {c['second_frame_max_s']} s; RSS {c['rss_before_kib']} -> {c['rss_all_open_kib']} KiB "
            f"(peak {c['rss_peak_kib']}) = {c['rss_per_stream_kib']} KiB/stream; "
            f"completed ok {c['completed']['ok']}, errors {c['completed']['errors']}"
        )
    kept = out.get("conversations_kept")
    if kept:
        grown = _mb(kept["rss_after_kib"]) - _mb(kept["rss_before_kib"])
        print(f"\n== idle RSS with the Claude Code-sized rows' conversations kept (until 118 s idle): {grown:+.1f} MB")
    if out.get("rss_timeline"):
        print("\n== codexd RSS (KiB) after each phase: " + ", ".join(f"{k} {v}" for k, v in out["rss_timeline"]))
    if "next_requests_ttft_ms" in out.get("rest", {}):
        first, second = out["rest"]["next_requests_ttft_ms"]
        print(
            f"\n== after {out['rest']['idle_s']:.0f} s idle, chat TTFT {first} ms on a new upstream connection, "
            f"then {second} ms"
        )
    if "churn" in out:
        ch = out["churn"]
        print(
            f"\n== {ch['requests']} chat requests at {ch['concurrency']} concurrent: {ch['requests_per_s']} req/s, "
            f"errors {ch['codexd']['errors']}; idle RSS after: {ch['rss_after_kib']} KiB"
        )
    if out.get("profile"):
        _table(
            "cProfile, top cumulative functions in codexd/",
            ["cum s", "own s", "calls", "function"],
            [[p["cumtime"], p["tottime"], p["calls"], p["function"]] for p in out["profile"]["codexd"]],
        )
        _table(
            "cProfile, top own-time functions overall",
            ["own s", "cum s", "calls", "function"],
            [[p["tottime"], p["cumtime"], p["calls"], p["function"]] for p in out["profile"]["own"]],
        )
    _table(
        "Targets (issue 6)",
        ["result", "value", "limit", "target"],
        [[t["result"], t["value"], t["limit"], t["target"]] for t in out["targets"]],
    )


def profile_top(path: Path, n: int = 10) -> dict[str, list[dict[str, Any]]]:
    """The top ``n`` codexd/ functions by cumulative time, and the top ``n`` overall by own time."""
    stats = pstats.Stats(str(path)).stats  # type: ignore[attr-defined]
    rows = [
        {
            "function": f"{Path(f).parent.name}/{Path(f).name}:{line}({name})",
            "file": f,
            "calls": nc,
            "tottime": round(tt, 3),
            "cumtime": round(ct, 3),
        }
        for (f, line, name), (_cc, nc, tt, ct, _callers) in stats.items()
    ]
    mine = [
        r
        for r in rows
        if "/codexd/" in r["file"]
        and "/bench/" not in r["file"]
        and not r["file"].endswith("__main__.py")
        and "cli/" not in r["file"]
    ]
    mine.sort(key=lambda r: -r["cumtime"])
    rows.sort(key=lambda r: -r["tottime"])
    return {"codexd": mine[:n], "own": rows[:n]}
