"""sd_notify, the watchdog interval and socket activation, against real sockets and a real child process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from codexd import notify

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def path_receiver(tmp_path: Path) -> Iterator[tuple[str, socket.socket]]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    address = str(tmp_path / "notify")
    sock.bind(address)
    sock.settimeout(5)
    yield address, sock
    sock.close()


def test_ready_and_status_arrive_as_one_datagram(path_receiver: tuple[str, socket.socket]) -> None:
    address, receiver = path_receiver
    assert notify.notify("READY=1\nSTATUS=serving on 127.0.0.1:8765", {"NOTIFY_SOCKET": address}) is True
    assert receiver.recv(4096) == b"READY=1\nSTATUS=serving on 127.0.0.1:8765"


def test_abstract_socket_name() -> None:
    name = f"codexd-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as receiver:
        receiver.bind("\0" + name)
        receiver.settimeout(5)
        assert notify.notify("WATCHDOG=1", {"NOTIFY_SOCKET": "@" + name}) is True
        assert receiver.recv(4096) == b"WATCHDOG=1"


def test_reloading_carries_the_monotonic_timestamp(path_receiver: tuple[str, socket.socket]) -> None:
    address, receiver = path_receiver
    before = time.monotonic_ns() // 1000
    assert notify.notify("RELOADING=1", {"NOTIFY_SOCKET": address})
    after = time.monotonic_ns() // 1000
    lines = receiver.recv(4096).decode().split("\n")
    assert lines[0] == "RELOADING=1"
    assert lines[1].startswith("MONOTONIC_USEC=")
    assert before <= int(lines[1].split("=", 1)[1]) <= after


def test_an_explicit_monotonic_timestamp_is_kept(path_receiver: tuple[str, socket.socket]) -> None:
    address, receiver = path_receiver
    assert notify.notify("RELOADING=1\nMONOTONIC_USEC=123", {"NOTIFY_SOCKET": address})
    assert receiver.recv(4096) == b"RELOADING=1\nMONOTONIC_USEC=123"


def test_uses_the_process_environment_by_default(
    path_receiver: tuple[str, socket.socket], monkeypatch: pytest.MonkeyPatch
) -> None:
    address, receiver = path_receiver
    monkeypatch.setenv("NOTIFY_SOCKET", address)
    assert notify.notify("STOPPING=1")
    assert receiver.recv(4096) == b"STOPPING=1"
    assert os.environ["NOTIFY_SOCKET"] == address  # later messages still need it


@pytest.mark.parametrize("env", [{}, {"NOTIFY_SOCKET": ""}, {"NOTIFY_SOCKET": "vsock:2:1234"}])
def test_outside_systemd_nothing_is_sent(env: dict[str, str]) -> None:
    assert notify.notify("READY=1", env) is False


def test_a_dead_notify_socket_is_not_an_error(tmp_path: Path) -> None:
    assert notify.notify("READY=1", {"NOTIFY_SOCKET": str(tmp_path / "gone")}) is False


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"WATCHDOG_USEC": "30000000"}, 15.0),
        ({"WATCHDOG_USEC": "6000000", "WATCHDOG_PID": str(os.getpid())}, 3.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}, None),  # another process's watchdog
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
        ({}, None),
    ],
)
def test_watchdog_interval_is_half_the_timeout(env: dict[str, str], expected: float | None) -> None:
    assert notify.watchdog_interval(env) == expected


def test_no_listen_fds_outside_socket_activation() -> None:
    env = {"LISTEN_FDS": "1", "LISTEN_PID": "1", "LISTEN_FDNAMES": "http"}
    assert notify.listen_fds(env) == []
    assert env == {"LISTEN_FDS": "1", "LISTEN_PID": "1", "LISTEN_FDNAMES": "http"}  # not ours: left alone
    assert notify.listen_fds({}) == []


CHILD = textwrap.dedent(
    """
    import json, os, select, socket, sys
    sys.path.insert(0, sys.argv[1])
    from codexd.notify import listen_fds
    if sys.argv[2] == "own":
        os.environ["LISTEN_PID"] = str(os.getpid())
    socks = listen_fds()
    report = {
        "count": len(socks),
        "env": {k: os.environ.get(k) for k in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES")},
    }
    if socks:
        s = socks[0]
        report.update(
            fd=s.fileno(), family=int(s.family), type=int(s.type), blocking=s.getblocking(),
            inheritable=os.get_inheritable(s.fileno()), address=list(s.getsockname()),
        )
    print(json.dumps(report), flush=True)
    if socks and select.select([socks[0]], [], [], 10)[0]:
        conn, _ = socks[0].accept()
        conn.sendall(b"adopted")
        conn.close()
    """
)


def run_child(listener: socket.socket, mode: str) -> tuple[subprocess.Popen[str], dict[str, object]]:
    env = {**os.environ, "LISTEN_FDS": "1", "LISTEN_FDNAMES": "http", "LISTEN_PID": "1"}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(ROOT), mode],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        close_fds=False,  # fd 3 must survive until exec; close_fds would run after preexec_fn
        preexec_fn=lambda: os.dup2(listener.fileno(), 3),
    )
    assert child.stdout is not None
    return child, json.loads(child.stdout.readline())


def test_listen_fds_adopts_the_inherited_listening_socket() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        child, report = run_child(listener, "own")
        with child:
            assert report["count"] == 1
            assert report["fd"] == 3
            assert report["family"] == socket.AF_INET
            assert report["type"] == socket.SOCK_STREAM
            assert report["blocking"] is False
            assert report["inheritable"] is False
            assert report["address"] == list(listener.getsockname())
            assert report["env"] == {"LISTEN_PID": None, "LISTEN_FDS": None, "LISTEN_FDNAMES": None}
            with socket.create_connection(listener.getsockname(), timeout=10) as client:
                assert client.recv(100) == b"adopted"  # the child accepted on the very same socket


def test_listen_fds_ignores_sockets_meant_for_another_pid() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        child, report = run_child(listener, "other")
        with child:
            child.wait(timeout=10)
    assert report["count"] == 0
    assert report["env"] == {"LISTEN_PID": "1", "LISTEN_FDS": "1", "LISTEN_FDNAMES": "http"}
