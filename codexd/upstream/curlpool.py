"""Tornado's curl client with curl handles made when a request needs one, and let go when codexd is idle.

Tornado creates ``max_clients`` curl handles up front (6.8 KiB each, so 7 MiB for 1,000 streams) and keeps
every handle it has used, with its upload buffer and its last request body (about 25 KiB more), for as long
as the process lives. Here handles are created on demand, up to ``max_clients``, and ``close_idle_handles``
closes the ones not in use. Upstream connections live in the multi handle, so they stay warm either way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tornado.curl_httpclient import CurlAsyncHTTPClient
from tornado.httpclient import HTTPRequest, HTTPResponse


class LazyCurlClient(CurlAsyncHTTPClient):
    """``CurlAsyncHTTPClient`` with handles on demand; see the module docstring."""

    def initialize(self, max_clients: int = 10, **kwargs: Any) -> None:  # type: ignore[override]
        super().initialize(max_clients=0, **kwargs)
        self.max_handles = max_clients

    def fetch_impl(self, request: HTTPRequest, callback: Callable[[HTTPResponse], None]) -> None:
        """Queue the request as Tornado does, with one more handle first if all are busy and the cap allows."""
        if not self._free_list and len(self._curls) < self.max_handles:
            curl = self._curl_create()
            self._curls.append(curl)
            self._free_list.append(curl)
        super().fetch_impl(request, callback)

    @property
    def at_rest(self) -> bool:
        """No transfer running or queued."""
        return not self._requests and len(self._free_list) == len(self._curls)

    def close_idle_handles(self) -> int:
        """Close every handle not carrying a request; how many were closed."""
        idle = {id(curl) for curl in self._free_list}
        for curl in self._free_list:
            curl.close()
        self._free_list.clear()
        self._curls = [curl for curl in self._curls if id(curl) not in idle]
        return len(idle)
