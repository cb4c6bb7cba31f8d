"""The systemd side of supervision, in pure Python: sd_notify, the watchdog interval and socket activation.

Outside systemd (no ``NOTIFY_SOCKET``, ``WATCHDOG_USEC`` or ``LISTEN_FDS`` in the environment) every function is
a no-op returning ``False``, ``None`` or ``[]``, so the serve loop calls them unconditionally. Imports only the
standard library; never raises on a notification failure (a lost status line must not kill the daemon).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import MutableMapping

SD_LISTEN_FDS_START = 3  # sd_listen_fds(3): passed sockets start at fd 3


def notify(state: str, env: MutableMapping[str, str] | None = None) -> bool:
    """Send ``state`` (e.g. ``"READY=1\\nSTATUS=listening"``) as one datagram to ``$NOTIFY_SOCKET``.

    ``RELOADING=1`` gets the ``MONOTONIC_USEC`` field systemd >= 253 requires. Returns True when sent.
    """
    env = os.environ if env is None else env
    addr = env.get("NOTIFY_SOCKET", "")
    if not addr or addr[0] not in "@/":
        return False  # unsupervised, or a transport (vsock:) user managers do not use
    if addr[0] == "@":
        addr = "\0" + addr[1:]  # abstract namespace
    lines = state.split("\n")
    if "RELOADING=1" in lines and not any(line.startswith("MONOTONIC_USEC=") for line in lines):
        lines.append(f"MONOTONIC_USEC={time.monotonic_ns() // 1000}")
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(addr)
            sock.sendall("\n".join(lines).encode())
    except OSError:
        return False
    return True


def watchdog_interval(env: MutableMapping[str, str] | None = None) -> float | None:
    """Seconds between ``WATCHDOG=1`` pings (half of ``WATCHDOG_USEC``), or None when no watchdog is asked for.

    A ``WATCHDOG_PID`` naming another process (e.g. a wrapper) means the watchdog is not ours.
    """
    env = os.environ if env is None else env
    pid = env.get("WATCHDOG_PID")
    if pid and pid != str(os.getpid()):
        return None
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    return usec / 2_000_000 if usec > 0 else None


def listen_fds(env: MutableMapping[str, str] | None = None) -> list[socket.socket]:
    """Adopt the listening sockets systemd passed (``LISTEN_FDS`` from fd 3), non-blocking and not inheritable.

    Only when ``LISTEN_PID`` is our pid. The variables are removed so that children do not adopt them too.
    Never ``shutdown()`` these sockets: the socket unit keeps duplicates and serves the next start.
    """
    env = os.environ if env is None else env
    if env.get("LISTEN_PID") != str(os.getpid()):
        return []
    try:
        count = int(env.get("LISTEN_FDS", "0"))
    except ValueError:
        count = 0
    for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        env.pop(name, None)
    sockets: list[socket.socket] = []
    for fd in range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + max(count, 0)):
        try:
            os.set_inheritable(fd, False)
            sock = socket.socket(fileno=fd)  # family and type are read from the fd
        except OSError:
            continue  # not a socket (or already closed): nothing to adopt
        sock.setblocking(False)
        sockets.append(sock)
    return sockets
