"""The serve loop: listen (or adopt systemd's sockets), tell systemd we are ready, ping its watchdog,
drain on SIGTERM, reload the configuration on SIGHUP.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import time
from collections.abc import Callable
from typing import Any

from tornado.httpserver import HTTPServer
from tornado.ioloop import PeriodicCallback
from tornado.netutil import bind_sockets

from codexd import __version__, memory, metrics, notify
from codexd.credentials import Credentials
from codexd.errors import CodexdError, ErrorKind
from codexd.logs import REDACTOR, setup_logging
from codexd.server.app import make_app
from codexd.server.base import BODIES, AppState
from codexd.server.deadlines import DeadlineHTTPServer
from codexd.settings import KEYS, Settings
from codexd.upstream.client import CONNECTION_MAX_AGE, Observer, UpstreamClient
from codexd.upstream.ratelimits import parse_windows
from codexd.upstream.trust import trust_problem

logger = logging.getLogger(__name__)

# What a reload cannot change without a restart.
RESTART_ONLY = ("host", "port", "max_clients", "proxy", "ca_bundle", "ca_dir")
# Seconds a connection may take to send a request's headers, which is also how long it may sit idle between
# requests (one limit for both, as in Tornado): a slowloris client holds a socket this long at most.
HEADER_TIMEOUT = 60.0
BODY_TIMEOUT = 120.0  # seconds to receive a request body once the headers are in
CUT_GRACE = 2.0  # seconds past the drain limit for cut requests to send their in-band error


def void(_: object) -> None:
    """Discard a value (PeriodicCallback wants callbacks that return None)."""


def build_state(settings: Settings) -> AppState:
    """The upstream client, the credentials and the metrics hooks for one server."""
    REDACTOR.add(settings.api_key)
    upstream = UpstreamClient(settings, credentials=None)  # type: ignore[arg-type]
    state = AppState(settings=settings, upstream=upstream)

    def on_headers(headers: Any) -> None:
        windows = parse_windows(headers, time.time())
        if windows:
            state.windows = windows
            metrics.observe_windows(windows)

    upstream.observer = Observer(
        on_headers=on_headers, on_error=lambda kind: metrics.UPSTREAM_ERRORS.labels(kind).inc()
    )
    upstream.credentials = Credentials(
        settings.auth_path,
        settings.refresh_url,
        upstream.token_post(),
        on_refresh=lambda result: metrics.REFRESHES.labels(result).inc(),
    )
    return state


def make_server(state: AppState) -> HTTPServer:
    """The HTTP server, with a transport body limit above codexd's own so oversize bodies get a clean 413."""
    app = make_app(state, extra_routes())
    return DeadlineHTTPServer(
        app,
        decompress_request=True,
        max_body_size=state.settings.max_body_size + (1 << 20),
        header_timeout=HEADER_TIMEOUT,
        body_timeout=BODY_TIMEOUT,
        xheaders=False,
    )


def extra_routes() -> list[Any]:
    """Routes of the chat and messages dialects (in their own modules)."""
    table: list[Any] = []
    try:
        from codexd.server.openai import routes as openai_routes

        table += openai_routes()
    except ImportError:
        pass
    try:
        from codexd.server.anthropic import routes as anthropic_routes

        table += anthropic_routes()
    except ImportError:
        pass
    return table


def listen(server: HTTPServer, settings: Settings) -> list[socket.socket]:
    """Adopt systemd's sockets when socket-activated, else bind ``host:port``."""
    sockets = notify.listen_fds()
    if not sockets:
        sockets = bind_sockets(settings.port, settings.host)
    server.add_sockets(sockets)
    return sockets


async def drain(server: HTTPServer, state: AppState, timeout: float) -> None:
    """Stop accepting, let in-flight requests finish up to ``timeout`` seconds, then cut the rest (each
    ends with its dialect's error event, or an error status if nothing was sent yet) and close."""
    notify.notify("STOPPING=1")
    server.stop()
    pending = len(state.in_flight)
    logger.info("draining %d in-flight request(s), up to %g s", pending, timeout)
    if pending:
        try:
            await asyncio.wait_for(state.idle.wait(), timeout)
        except TimeoutError:
            logger.warning("drain limit reached with %d request(s) still running", len(state.in_flight))
            # Cut the upstream streams first, so each handler ends its answer with its dialect's error
            # before the connections close (closing the curl clients under live transfers also crashes).
            shutting_down = CodexdError(
                ErrorKind.UNAVAILABLE, "codexd is shutting down; retry the request", status=503, code="shutting_down"
            )
            for stream in list(state.upstream.live):
                stream.abort(shutting_down)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(state.idle.wait(), CUT_GRACE)
    await server.close_all_connections()
    state.upstream.close()


def reload(state: AppState, load: Callable[[], Settings]) -> None:
    """Re-read the configuration; apply what can change at run time and log what changed."""
    notify.notify(f"RELOADING=1\nMONOTONIC_USEC={time.monotonic_ns() // 1000}")
    try:
        new = load()
    except Exception as exc:  # a bad file keeps the old settings running
        logger.error("reload failed, keeping the running configuration: %s", exc)
        notify.notify("READY=1\nSTATUS=reload failed; running with the previous configuration")
        return
    old = state.settings
    changed = [k.name for k in KEYS if getattr(old, k.attr) != getattr(new, k.attr)]
    kept = [name for name in changed if name.split(".")[-1] in RESTART_ONLY]
    applied = [name for name in changed if name not in kept]
    for name in RESTART_ONLY:
        new = new.replace(**{name: getattr(old, name)})
    state.settings = new
    state.upstream.settings = new
    state.models_cache = None
    REDACTOR.add(new.api_key)
    setup_logging(new.log_level, new.log_format)
    logger.info("configuration reloaded; changed: %s", ", ".join(applied) or "nothing")
    if kept:
        logger.warning("these keys need a restart to take effect: %s", ", ".join(kept))
    notify.notify("READY=1\nSTATUS=serving (configuration reloaded)")


async def serve(settings: Settings, load: Callable[[], Settings]) -> int:
    """Run until SIGTERM or SIGINT; returns the exit status."""
    setup_logging(settings.log_level, settings.log_format)
    state = build_state(settings)
    server = make_server(state)
    sockets = listen(server, settings)
    address = sockets[0].getsockname()
    logger.info("codexd %s listening on %s:%s", __version__, address[0], address[1])
    problem = trust_problem(settings)
    if problem is not None:
        logger.warning("%s: upstream requests will fail TLS verification (%s)", *problem)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGHUP, lambda: reload(state, load))
    watchdog = notify.watchdog_interval()
    pinger = None
    if watchdog:
        pinger = PeriodicCallback(lambda: void(notify.notify("WATCHDOG=1")), watchdog * 1000)
        pinger.start()
    trimmer = PeriodicCallback(IdleTrim(state), IDLE_TRIM_AFTER * 1000)
    trimmer.start()
    loop.call_later(1.0, memory.tune_gc)  # after start-up, so that /health answers as early as it can
    notify.notify(f"READY=1\nSTATUS=serving on {address[0]}:{address[1]}")
    await stop.wait()
    logger.info("shutting down")
    trimmer.stop()
    await drain(server, state, state.settings.drain_timeout)
    if pinger is not None:
        pinger.stop()
    return 0


IDLE_TRIM_AFTER = 2.0  # seconds without a request before freed memory goes back to the system


class IdleTrim:
    """Keeps an idle codexd small. ``IDLE_TRIM_AFTER`` seconds after a burst of requests it closes the curl
    handles the burst made and gives the allocator's free memory back (a few milliseconds); after
    ``CONNECTION_MAX_AGE`` without requests it also closes the upstream connections, which libcurl would
    not reuse any more, and forgets the remembered conversations. Then it waits for the next burst. A
    conversation no request has brought for that long is forgotten even while others keep codexd busy."""

    def __init__(self, state: AppState) -> None:
        self.state = state
        self.trimmed_at = 0  # ``state.served`` at the last trim
        self.closed_at = 0  # ``state.served`` when the upstream connections were last closed

    def __call__(self) -> None:
        state = self.state
        BODIES.forget_conversations(unused_for=CONNECTION_MAX_AGE)  # agents that stopped while others work on
        if state.in_flight or state.served == self.closed_at:
            return
        idle = time.monotonic() - state.last_done
        if idle < IDLE_TRIM_AFTER:
            return
        if state.served != self.trimmed_at:
            self.trimmed_at = state.served
            handles = state.upstream.release_handles()
            if state.upstream.close_extra_connections():
                logger.debug("closed the upstream connections a burst opened beyond one")
            if memory.release_free_memory():
                logger.debug("gave memory back after %d requests (%d curl handles closed)", state.served, handles)
        elif idle >= CONNECTION_MAX_AGE:
            self.closed_at = state.served
            BODIES.forget_conversations()  # and with them, what the translators kept of them
            if state.upstream.close_idle():
                logger.debug("closed the upstream connections after %.0f s without requests", idle)
            memory.release_free_memory()
