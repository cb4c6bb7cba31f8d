"""``/v1/messages`` and ``/v1/messages/count_tokens``: Anthropic clients (Claude Code, the SDKs)."""

from __future__ import annotations

import asyncio
import time
import uuid

from codexd.server.base import BaseHandler
from codexd.server.relay import DialectHandler
from codexd.translate.messages_blocks import message_failure, message_from
from codexd.translate.messages_request import to_responses
from codexd.translate.messages_stream import ResponsesToMessages


class MessagesHandler(DialectHandler):
    """POST a Messages request; answer with Anthropic SSE (``stream: true``) or one message object."""

    dialect = "anthropic"
    route = "messages"

    async def post(self) -> None:
        settings = self.settings_
        self.set_header("request-id", self.request_id)
        headers = self.request.headers
        request = to_responses(
            self.json_body(),
            models=self.model_map(),
            instructions=settings.instructions,
            default_effort=settings.reasoning_effort,
            session_id=headers.get("X-Claude-Code-Session-Id"),
        )
        self.model_label = request.body["model"]
        forwarded = dict(headers)
        forwarded.setdefault("session-id", request.session_key)
        stream = await self.open_stream(request.body, forwarded)
        message_id = "msg_" + uuid.uuid4().hex[:24]
        if request.stream:
            translator = ResponsesToMessages(
                message_id=message_id,
                model=request.model,
                tool_names=request.tool_names,
                thinking=request.thinking,
                request_id=self.request_id,
            )
            await self.relay(stream, translator, ping=translator.ping)
            return
        agg = await self.collect(stream)
        failure = message_failure(agg)
        if failure is not None:
            raise failure
        self.send_json(
            message_from(
                agg,
                message_id=message_id,
                model=request.model,
                tool_names=request.tool_names,
                thinking=request.thinking,
            )
        )


# How long the estimate may hold the event loop before running streams get their turn (seconds).
COUNT_SLICE = 0.005


class CountTokensHandler(DialectHandler):
    """An offline estimate of the prompt's input tokens (see README for its accuracy)."""

    dialect = "anthropic"
    route = "count_tokens"

    async def post(self) -> None:
        from codexd.translate.count_tokens import count_parts, tokens_of

        self.set_header("request-id", self.request_id)
        parts: list[float] = []
        pause_at = time.monotonic() + COUNT_SLICE
        for part in count_parts(self.json_body()):
            parts.append(part)
            if time.monotonic() > pause_at:  # a long conversation: let the streams' events through
                await asyncio.sleep(0)
                if self.client_gone:
                    return
                pause_at = time.monotonic() + COUNT_SLICE
        self.send_json({"input_tokens": tokens_of(parts)})


def routes() -> list[tuple[str, type[BaseHandler]]]:
    """The Messages routes, with and without ``/v1`` (any query string, e.g. ``?beta=true``, is fine)."""
    return [
        (r"/(?:v1/)?messages", MessagesHandler),
        (r"/(?:v1/)?messages/count_tokens", CountTokensHandler),
    ]
