"""``/v1/responses``: Responses clients (the openai SDK, the Codex CLI as a custom provider)."""

from __future__ import annotations

from typing import Any

from codexd.dialects import openai
from codexd.errors import CodexdError, ErrorKind
from codexd.server.relay import DialectHandler
from codexd.translate.responses_body import normalise
from codexd.translate.responses_stream import ResponsesPassthrough
from codexd.translate.upstream_failure import failure_from_aggregate


class ResponsesHandler(DialectHandler):
    """POST: normalise, stream upstream, pass events through (or aggregate); GET upgrade: 426."""

    route = "responses"

    def get(self) -> None:
        if self.request.headers.get("Upgrade", "").lower() == "websocket":
            # The Codex CLI falls back to HTTP at once on 426; other statuses make it retry for seconds.
            raise CodexdError(
                ErrorKind.UPGRADE_REQUIRED,
                "WebSocket is not supported; use HTTP POST with SSE",
                code="websocket_not_supported",
            )
        raise CodexdError(ErrorKind.METHOD_NOT_ALLOWED, "use POST for /v1/responses")

    def error_payload(self, err: CodexdError) -> tuple[int, dict[str, Any]]:
        """The Responses form of the OpenAI dialect's error (``openai.responses_error``)."""
        return openai.responses_error(err)

    async def post(self) -> None:
        settings = self.settings_
        request = normalise(self.json_body(), models=self.model_map(), instructions=settings.instructions)
        self.model_label = request.upstream["model"]
        stream = await self.open_stream(request.upstream, self.request.headers)
        if request.stream:
            await self.relay(stream, ResponsesPassthrough())
            return
        agg = await self.collect(stream)
        failure = failure_from_aggregate(agg)
        if failure is not None:
            raise failure
        self.send_json(agg.result())
