"""The base of every handler: the door checks, request ids, metrics, the one error writer per dialect, and
``x-codexd-overhead-ms`` on every response.

``BaseHandler.prepare`` runs the checks every request passes (Host, Origin, api key, body size) and
gives each request an id; ``write_error`` turns any error into the endpoint's own dialect. The API
endpoints derive from ``relay.DialectHandler``.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
import uuid
from asyncio import Future
from dataclasses import dataclass, field
from http.client import responses as HTTP_REASONS
from typing import Any

from tornado import web

from codexd import metrics
from codexd.content_coding import decode
from codexd.dialects import anthropic, openai
from codexd.errors import CodexdError, ErrorKind, too_large
from codexd.jsonparse import MAX_DEPTH, BodyParser, TooDeep
from codexd.models import ModelMap
from codexd.settings import Settings, is_loopback
from codexd.translate.aggregate import Usage
from codexd.upstream.client import UpstreamClient
from codexd.upstream.stream import UpstreamStream

logger = logging.getLogger(__name__)


@dataclass
class AppState:
    """What handlers share: settings (replaced on reload), the upstream client, live requests."""

    settings: Settings
    upstream: UpstreamClient
    started: float = field(default_factory=time.monotonic)
    in_flight: set[BaseHandler] = field(default_factory=set)
    models_cache: tuple[float, list[str]] | None = None
    windows: list[Any] = field(default_factory=list)
    idle: asyncio.Event = field(default_factory=asyncio.Event)
    served: int = 0  # requests finished since start
    last_done: float = 0.0  # when the last one finished (monotonic)


_JSON_LIKE = frozenset({"", "application/json", "text/plain", "application/x-www-form-urlencoded"})
BODIES = BodyParser()  # one for the process: clients resend tool lists across connections


class BaseHandler(web.RequestHandler):
    """Door checks, request ids, metrics and the error funnel; every route derives from this."""

    dialect = "openai"  # which error writer this endpoint speaks
    open_door = False  # True for /health, /ready, /metrics: no api key needed
    route = "other"  # the metrics label for this endpoint

    def initialize(self, state: AppState) -> None:
        self.state = state
        self.t0 = time.monotonic()
        self.first_byte_at: float | None = None
        self.upstream_stream: UpstreamStream | None = None
        self.usage: Usage | None = None
        self.model_label = ""
        self.client_gone = False
        self.request_id = ""
        self.overhead: float | None = None  # seconds, as shown in x-codexd-overhead-ms
        self.upstream_wait = 0.0  # seconds spent waiting on upstream calls other than the stream's (e.g. /models)

    @property
    def settings_(self) -> Settings:
        """The current settings (a reload swaps them)."""
        return self.state.settings

    def model_map(self) -> ModelMap:
        """How client model names become upstream slugs, under the current settings."""
        settings = self.state.settings
        return ModelMap(settings.default_model, settings.small_model, settings.aliases)

    def set_default_headers(self) -> None:
        self.clear_header("Server")

    def clear(self) -> None:
        super().clear()
        self.overhead_shown = False  # whether x-codexd-overhead-ms is among the headers (clear drops it)

    def flush(self, include_footers: bool = False) -> Future[None]:
        if not self.overhead_shown:  # the first flush sends the headers: every response shows its overhead
            self.show_overhead()
        return super().flush(include_footers)

    def show_overhead(self) -> None:
        """Set ``x-codexd-overhead-ms`` to the time codexd has added so far (``overhead_ms``)."""
        overhead_ms = self.overhead_ms()
        self.set_header("x-codexd-overhead-ms", f"{overhead_ms:.2f}")
        self.overhead_shown = True
        self.overhead = overhead_ms / 1000

    def overhead_ms(self) -> float:
        """Milliseconds codexd itself spent on this request so far: all of it, less the upstream's own time.

        That is the wait for the upstream stream's headers or, once it has ended (a whole answer, an error),
        for all of it, and any other upstream call the handler waited on (``upstream_wait``)."""
        now = time.monotonic()
        waited = self.upstream_wait
        stream = self.upstream_stream
        if stream is not None:
            waited += (stream.finished_at or stream.headers_at or now) - stream.started_at
        return (now - self.t0 - waited) * 1000

    def check_xsrf_cookie(self) -> None:  # an API: no cookies, no XSRF tokens
        pass

    async def prepare(self) -> None:
        """Request id, then Host, Origin, api key and body size, in that order."""
        headers = self.request.headers
        self.request_id = (headers.get("x-request-id") or headers.get("x-correlation-id") or "")[:128]
        if not self.request_id or not self.request_id.isprintable():
            self.request_id = "req_" + uuid.uuid4().hex
        self.set_header("x-request-id", self.request_id)
        self.state.in_flight.add(self)
        self.state.idle.clear()
        metrics.IN_FLIGHT.inc()
        self._check_host()
        self._check_origin()
        if not self.open_door:
            self._check_api_key()
        length = headers.get("Content-Length")
        if length is not None and (not length.isdigit() or int(length) > self.settings_.max_body_size):
            raise too_large(self.settings_.max_body_size)

    def _check_host(self) -> None:
        host = self.request.host_name.lower()
        settings = self.settings_
        if is_loopback(host) or host == settings.host.lower() or host in settings.allowed_hosts:
            return
        raise CodexdError(ErrorKind.FORBIDDEN, f"Host '{host}' is not allowed (DNS rebinding protection)")

    def _check_origin(self) -> None:
        origin = self.request.headers.get("Origin")
        if origin is None or origin in self.settings_.allowed_origins:
            return
        raise CodexdError(ErrorKind.FORBIDDEN, f"cross-origin requests from '{origin}' are not allowed")

    def _check_api_key(self) -> None:
        key = self.settings_.api_key
        if not key:
            return
        headers = self.request.headers
        given = headers.get("x-api-key") or ""
        auth = headers.get("Authorization", "")
        if auth[:7].lower() == "bearer ":
            given = given or auth[7:].strip()
        if not hmac.compare_digest(given.encode(), key.encode()):
            raise CodexdError(ErrorKind.UNAUTHORIZED, "missing or wrong api key", code="invalid_api_key")

    # --- errors -------------------------------------------------------------------------------------
    def error_payload(self, err: CodexdError) -> tuple[int, dict[str, Any]]:
        """The status and JSON body of ``err`` in this endpoint's dialect."""
        if self.dialect == "anthropic":
            self.set_header("request-id", self.request_id)
            return anthropic.status_for(err), anthropic.error_body(err, self.request_id)
        return err.status, openai.error_body(err)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """The one funnel for errors raised before the response started."""
        err = as_codexd_error(status_code, kwargs.get("exc_info"))
        if self.request_id:  # send_error cleared the headers set in prepare()
            self.set_header("x-request-id", self.request_id)
        status, body = self.error_payload(err)
        self.set_status(status, HTTP_REASONS.get(status, "Error"))
        self.set_header("Content-Type", "application/json")
        if err.retry_after is not None:
            self.set_header("Retry-After", str(err.retry_after))
        for name, value in err.headers.items():
            self.set_header(name, value)
        self.finish(json.dumps(body))

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, CodexdError):
            level = logging.WARNING if value.status >= 500 else logging.INFO
            logger.log(
                level,
                "%s %s -> %d %s [%s]",
                self.request.method,
                self.request.path,
                value.status,
                value.message,
                self.request_id,
            )
        elif isinstance(value, web.HTTPError):
            logger.info("%s %s -> %d [%s]", self.request.method, self.request.path, value.status_code, self.request_id)
        else:
            logger.error("unexpected error [%s]", self.request_id, exc_info=(typ, value, tb))

    # --- body -------------------------------------------------------------------------------------
    def json_body(self) -> Any:
        """The request body parsed as JSON; a 4xx in the dialect when it is not."""
        ctype = self.request.headers.get("Content-Type", "application/json").split(";")[0].strip().lower()
        # curl -d sends form-urlencoded by default; a JSON body under that label is still accepted.
        if ctype not in _JSON_LIKE and not ctype.endswith("+json"):
            raise CodexdError(ErrorKind.UNSUPPORTED_MEDIA, f"expected a JSON body, got Content-Type '{ctype}'")
        body = decode(self.request.body, self.request.headers.get("Content-Encoding", ""), self.settings_.max_body_size)
        if not body:
            raise CodexdError(ErrorKind.BAD_REQUEST, "the request body is empty; expected a JSON object")
        try:
            return BODIES.parse(body)
        except (ValueError, RecursionError) as exc:
            raise CodexdError(ErrorKind.BAD_REQUEST, f"the request body is not valid JSON: {exc}") from None
        except TooDeep:
            # Translators copy and walk bodies recursively; a deeper body would end in a RecursionError.
            raise CodexdError(ErrorKind.BAD_REQUEST, f"the request body nests deeper than {MAX_DEPTH} levels") from None

    # --- lifecycle --------------------------------------------------------------------------------
    def on_connection_close(self) -> None:
        self.client_gone = True
        if self.upstream_stream is not None:
            self.upstream_stream.abort()

    def on_finish(self) -> None:
        self._done()

    def _done(self) -> None:
        if self not in self.state.in_flight:
            return
        self.state.in_flight.discard(self)
        self.state.served += 1
        self.state.last_done = time.monotonic()
        if not self.state.in_flight:
            self.state.idle.set()
        metrics.IN_FLIGHT.dec()
        # Tornado's auto-finish marks an abandoned stream finished too; a client that left is still a 499.
        status = 499 if self.client_gone else self.get_status()
        metrics.REQUESTS.labels(self.route, str(status)).inc()
        metrics.DURATION.labels(self.route).observe(time.monotonic() - self.t0)
        if self.first_byte_at is not None:
            metrics.TTFB.labels(self.route).observe(self.first_byte_at - self.t0)
        if self.overhead is not None:
            metrics.OVERHEAD.labels(self.route).observe(self.overhead)
        if self.usage is not None and self.model_label:
            metrics.observe_usage(model_label(self.model_label), self.usage)
        if self.upstream_stream is not None:
            self.upstream_stream.abort()  # no-op once it finished; closes it if we ended early


_MODEL_LABELS: set[str] = set()  # process-wide, like the metrics registry itself
MAX_MODEL_LABELS = 64


def model_label(name: str) -> str:
    """A bounded metrics label for a client's model name: odd names, and any past the first 64, are "other".

    Clients choose model names freely; unbounded labels would grow memory and /metrics without limit, and
    one label that is not valid UTF-8 (a lone surrogate) would break the /metrics exposition for good.
    """
    if name in _MODEL_LABELS:
        return name
    if len(_MODEL_LABELS) < MAX_MODEL_LABELS and len(name) <= 64 and name.isascii() and name.isprintable():
        _MODEL_LABELS.add(name)
        return name
    return "other"


def as_codexd_error(status_code: int, exc_info: Any) -> CodexdError:
    """Any exception (or a bare status) as a ``CodexdError`` fit to show a client."""
    exc = exc_info[1] if exc_info else None
    if isinstance(exc, CodexdError):
        return exc
    if isinstance(exc, web.HTTPError):
        kinds = {404: ErrorKind.NOT_FOUND, 405: ErrorKind.METHOD_NOT_ALLOWED, 413: ErrorKind.TOO_LARGE}
        kind = kinds.get(exc.status_code, ErrorKind.BAD_REQUEST if exc.status_code < 500 else ErrorKind.INTERNAL)
        reason = exc.log_message or HTTP_REASONS.get(exc.status_code, "error")
        return CodexdError(kind, reason % exc.args if exc.args else reason, status=exc.status_code)
    if status_code < 500:
        return CodexdError(ErrorKind.BAD_REQUEST, HTTP_REASONS.get(status_code, "bad request"), status=status_code)
    return CodexdError(ErrorKind.INTERNAL, "internal error in codexd; see its log")
