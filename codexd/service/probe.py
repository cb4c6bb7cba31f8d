"""Small network probes for install and doctor: GET /health, wait until it answers, is the port free.

Standard library only (urllib with short timeouts, no proxy for loopback), so ``codexd install`` and
``codexd doctor`` never import Tornado.
"""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_LOCAL = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP answer: status (0 when nothing answered), parsed JSON body if any, or the error text."""

    status: int
    body: Any = None
    error: str = ""

    @property
    def ok(self) -> bool:
        """A 2xx answer."""
        return 200 <= self.status < 300


def base_url(host: str, port: int) -> str:
    """``http://host:port`` reachable from this machine (a wildcard address becomes loopback)."""
    host = _LOCAL.get(host.strip("[]"), host.strip("[]"))
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def get(url: str, timeout: float = 2.0, api_key: str = "") -> Answer:
    """GET ``url`` without proxies; never raises."""
    headers = {"Authorization": f"Bearer {api_key}", "x-api-key": api_key} if api_key else {}
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(url, headers=headers)
    try:
        with opener.open(request, timeout=timeout) as response:
            return Answer(response.status, _json(response.read()))
    except urllib.error.HTTPError as exc:
        return Answer(exc.code, _json(exc.read()), f"HTTP {exc.code}")
    except (OSError, ValueError) as exc:
        return Answer(0, None, str(getattr(exc, "reason", exc)))


def _json(data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return None


def wait_healthy(
    url: str,
    timeout: float = 10.0,
    api_key: str = "",
    still_starting: Callable[[], bool] = lambda: True,
) -> Answer:
    """Poll ``url`` until it answers 2xx, ``timeout`` passes or ``still_starting()`` says to give up."""
    deadline = time.monotonic() + timeout
    while True:
        answer = get(url, timeout=min(2.0, max(0.2, deadline - time.monotonic())), api_key=api_key)
        if answer.ok or time.monotonic() >= deadline or not still_starting():
            return answer
        time.sleep(0.2)


def port_free(host: str, port: int) -> bool:
    """Whether ``host:port`` can be bound right now."""
    host = host.strip("[]") or "127.0.0.1"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True
