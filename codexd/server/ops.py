"""Operational endpoints: ``/health``, ``/ready``, ``/metrics`` and ``/v1/models``."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from codexd import __version__, metrics
from codexd.errors import CodexdError, ErrorKind
from codexd.models import (
    BUILTIN_MODELS,
    anthropic_list,
    catalog_etag,
    catalog_slugs,
    catalog_with_aliases,
    openai_list,
    with_aliases,
)
from codexd.server.base import BaseHandler

logger = logging.getLogger(__name__)


class HealthHandler(BaseHandler):
    """Liveness: answers while the process runs; touches no credentials."""

    open_door = True
    route = "health"

    def get(self) -> None:
        self.write({"status": "ok", "version": __version__, "uptime": round(time.monotonic() - self.state.started, 3)})

    def head(self) -> None:  # Claude Code probes ``HEAD /`` before its first request
        self.set_header("Content-Type", "application/json")


class ReadyHandler(BaseHandler):
    """Readiness: credentials load. Mode, masked account id and time to expiry; never a secret."""

    open_door = True
    route = "ready"

    def get(self) -> None:
        described = self.state.upstream.credentials.describe()
        windows = [
            {
                "family": w.family,
                "window": w.window,
                "used_percent": w.used_percent,
                "window_minutes": w.window_minutes,
                "resets_at": w.resets_at,
            }
            for w in self.state.windows
        ]
        body = {"ready": bool(described.get("ok")), "credentials": described, "rate_limits": windows}
        self.set_status(200 if body["ready"] else 503)
        self.write(body)


class MetricsHandler(BaseHandler):
    """Prometheus text exposition."""

    open_door = True
    route = "metrics"

    def get(self) -> None:
        self.set_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        self.write(metrics.exposition())


class ModelsHandler(BaseHandler):
    """``GET /v1/models`` (and ``/v1/models/{id}``): the upstream catalog, cached, plus aliases."""

    route = "models"

    def prepare_dialect(self) -> None:
        if self.request.headers.get("anthropic-version"):
            self.dialect = "anthropic"

    async def get(self, model_id: str | None = None) -> None:
        self.prepare_dialect()
        client_version = self.get_query_argument("client_version", "")
        if client_version and model_id is None and self.dialect == "openai":
            catalog, etag = await self._catalog(client_version)
            if etag:  # else Tornado gives the answer an ETag of its own, a hash of the body
                self.set_header("Etag", etag)
                if self.check_etag_header():  # as Tornado does with its own
                    self.set_status(304)
                    return
            self.write(catalog)
            return
        slugs = with_aliases(await self._slugs(), self.settings_.aliases)
        if model_id is not None:
            if model_id not in slugs:
                raise CodexdError(ErrorKind.NOT_FOUND, f"model '{model_id}' not found", code="model_not_found")
            slugs = [model_id]
        body = anthropic_list(slugs) if self.dialect == "anthropic" else openai_list(slugs)
        self.write(body["data"][0] if model_id is not None else body)

    async def _catalog(self, client_version: str) -> tuple[dict[str, Any], str]:
        """The backend's own catalog, for the Codex CLI (which asks with its ``client_version``, caches the answer
        itself and reads this shape only), with the aliases added; and its ETag, if the backend gave one."""
        credentials = await self.state.upstream.credentials.current()
        if credentials.mode == "apikey":
            raise CodexdError(
                ErrorKind.NOT_FOUND, "no Codex model catalog with an API-key login", code="model_catalog_unavailable"
            )
        payload, headers = await self._fetch_catalog(client_version)
        if not isinstance(payload, dict):
            raise CodexdError(ErrorKind.UPSTREAM, "the upstream's model catalog is not a JSON object")
        aliases = self.settings_.aliases
        etag = headers.get("Etag", "")
        return catalog_with_aliases(payload, aliases), catalog_etag(etag, aliases) if etag else ""

    async def _fetch_catalog(self, client_version: str) -> tuple[Any, Mapping[str, str]]:
        """The backend's catalog as asked with ``client_version``, and its answer's headers; the time it takes
        is the upstream's, not codexd's, in ``overhead_ms`` (failures included)."""
        asked = time.monotonic()
        try:
            return await self.state.upstream.get_json("/models", urlencode({"client_version": client_version}))
        finally:
            self.upstream_wait += time.monotonic() - asked

    async def _slugs(self) -> list[str]:
        settings = self.settings_
        cached = self.state.models_cache
        fresh = self.get_query_argument("refresh", "") not in ("true", "1")
        if cached and fresh and time.monotonic() - cached[0] < settings.models_cache_ttl:
            return cached[1]
        try:
            credentials = await self.state.upstream.credentials.current()
            if credentials.mode == "apikey":
                return list(BUILTIN_MODELS)
            payload, _ = await self._fetch_catalog(settings.client_version)
            slugs = catalog_slugs(payload)
        except CodexdError as err:
            logger.warning("model list unavailable (%s); serving the built-in list", err.message)
            return list(BUILTIN_MODELS)
        if not slugs:
            return list(BUILTIN_MODELS)
        self.state.models_cache = (time.monotonic(), slugs)
        return slugs


class NotFoundHandler(BaseHandler):
    """Any other path: 404 in the dialect the path suggests."""

    def prepare(self):  # type: ignore[no-untyped-def]
        if "/messages" in self.request.path or self.request.headers.get("anthropic-version"):
            self.dialect = "anthropic"
        return super().prepare()

    def _not_found(self) -> None:
        raise CodexdError(ErrorKind.NOT_FOUND, f"no such endpoint: {self.request.method} {self.request.path}")

    get = post = put = delete = patch = _not_found
