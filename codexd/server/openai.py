"""``/v1/chat/completions``: Chat Completions clients, translated to the Codex backend and back.

In API-key mode (``auth_mode: apikey``) the request goes natively to ``{openai_base_url}/chat/completions``
and the answer streams back unchanged, with the same door checks, request ids and metrics.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from codexd.server.base import BaseHandler
from codexd.server.relay import DialectHandler
from codexd.translate.chat_request import to_responses
from codexd.translate.chat_stream import ChatOptions, ResponsesToChat, chat_completion
from codexd.translate.upstream_failure import failure_from_aggregate


class ChatCompletionsHandler(DialectHandler):
    """POST a chat request; answer with chunks (``stream: true``) or one ``chat.completion``."""

    route = "chat_completions"

    async def post(self) -> None:
        settings = self.settings_
        body = self.json_body()
        auth = await self.state.upstream.credentials.current()
        if auth.mode == "apikey":
            await self.passthrough(body)
            return
        headers = self.request.headers
        request = to_responses(
            body,
            models=self.model_map(),
            default_effort=settings.reasoning_effort,
            instructions=settings.instructions,
            session_key=headers.get("session-id") or headers.get("session_id") or headers.get("x-session-id"),
            reasoning_summary="auto" if settings.reasoning_content else None,
        )
        self.model_label = request.upstream["model"]
        stream = await self.open_stream(request.upstream, headers)
        completion_id = "chatcmpl-" + uuid.uuid4().hex[:24]
        created = int(time.time())
        if request.stream:
            options = ChatOptions(include_usage=request.include_usage, reasoning_content=settings.reasoning_content)
            translator = ResponsesToChat(
                completion_id=completion_id, created=created, model=request.model, options=options
            )
            await self.relay(stream, translator)
            return
        agg = await self.collect(stream)
        failure = failure_from_aggregate(agg)
        if failure is not None:
            raise failure
        self.send_json(
            chat_completion(
                agg,
                completion_id=completion_id,
                created=created,
                model=request.model,
                reasoning_content=settings.reasoning_content,
            )
        )

    async def passthrough(self, body: Any) -> None:
        """API-key mode: the public API speaks Chat Completions itself; relay its bytes."""
        if isinstance(body, dict) and isinstance(body.get("model"), str):
            body = {**body, "model": self.model_map().resolve(body["model"])}
            self.model_label = body["model"]
        stream = await self.open_stream(body, self.request.headers, path="/chat/completions")
        await self.relay_raw(stream)


def routes() -> list[tuple[str, type[BaseHandler]]]:
    """The chat routes, with and without the ``/v1`` prefix."""
    return [(r"/(?:v1/)?chat/completions", ChatCompletionsHandler)]
