"""``make_app``: the route table. Refuses a route that does not derive from ``BaseHandler``."""

from __future__ import annotations

import logging
from typing import Any

from tornado import web
from tornado.log import access_log

from codexd.server import ops
from codexd.server.base import AppState, BaseHandler
from codexd.server.responses import ResponsesHandler


def routes() -> list[tuple[str, type[BaseHandler]]]:
    """Every path codexd serves. Handlers for the chat and messages dialects join when present."""
    table: list[tuple[str, type[BaseHandler]]] = [
        (r"/", ops.HealthHandler),
        (r"/health", ops.HealthHandler),
        (r"/ready", ops.ReadyHandler),
        (r"/metrics", ops.MetricsHandler),
        (r"/(?:v1/)?models", ops.ModelsHandler),
        (r"/(?:v1/)?models/([^/]+)", ops.ModelsHandler),
        (r"/(?:v1/)?responses", ResponsesHandler),
    ]
    return table


def make_app(state: AppState, extra: list[tuple[str, type[BaseHandler]]] | None = None) -> web.Application:
    """The tornado Application for ``state``."""
    table = routes() + (extra or [])
    for path, handler in table:
        if not issubclass(handler, BaseHandler):
            raise TypeError(f"route {path} uses {handler.__name__}, which skips BaseHandler's door checks")
    kwargs: dict[str, Any] = {"state": state}
    return web.Application(
        [(path, handler, kwargs) for path, handler in table],
        default_handler_class=ops.NotFoundHandler,
        default_handler_args=kwargs,
        compress_response=False,
        log_function=log_request,
    )


def log_request(handler: web.RequestHandler) -> None:
    """One access line per request; a 503 from /ready is a state, not an error."""
    status = handler.get_status()
    level = logging.DEBUG if status < 400 else logging.INFO
    if status >= 500 and not isinstance(handler, ops.ReadyHandler):
        level = logging.WARNING
    request = handler.request
    access_log.log(
        level,
        "%d %s %s %.1fms [%s]",
        status,
        request.method,
        request.path,
        1000 * request.request_time(),
        getattr(handler, "request_id", "-"),
    )
