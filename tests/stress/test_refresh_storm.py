"""200 requests at once through a real codexd HTTP server while its access token needs a refresh.

The unit tests show single-flight on ``Credentials`` alone; here the requests come over HTTP through every
endpoint, streaming and not, and the proactive (expiring, expired) and reactive (upstream 401) paths
must all end in exactly one call at the token endpoint and 200 complete answers.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from tests.fakes.tokens import make_jwt
from tests.harness import start_stack, write_login
from tests.stress.rig import ENDPOINTS, Answer, call, finished_properly

CONCURRENCY = 200


@pytest.mark.slow
@pytest.mark.parametrize(
    ("case", "expires_in"),
    [("expiring", 120.0), ("expired", -60.0), ("revoked", 3600.0)],
    ids=["expiring-within-5-minutes", "already-expired", "rejected-by-the-upstream"],
)
def test_200_concurrent_requests_share_one_refresh(tmp_path: Path, case: str, expires_in: float) -> None:
    home = tmp_path / "codex"
    old_token = make_jwt(exp=time.time() + expires_in, serial="old")
    write_login(home, access_token=old_token)
    kinds = [(kind, i % 2 == 0) for i, kind in zip(range(CONCURRENCY), list(ENDPOINTS) * CONCURRENCY, strict=False)]

    async def scenario() -> tuple[list[Answer], list[str], list[str], int]:
        stack = start_stack(home)
        backend = stack.backend
        backend.token_state.delay = 0.3  # the refresh is still in flight while the other requests arrive
        if case == "revoked":
            backend.state.revoked.add(old_token)  # not expired by its exp: only the 401 says it is dead
        try:
            answers = await asyncio.wait_for(
                asyncio.gather(
                    *(
                        call(stack.port, ENDPOINTS[kind]["path"], {**ENDPOINTS[kind]["body"], "stream": stream})
                        for kind, stream in kinds
                    )
                ),
                60,
            )
        finally:
            stack.stop()
        bearers = [r.headers.get("Authorization", "") for r in backend.state.posts]
        new_token = backend.token_state.issued[0]["access_token"] if backend.token_state.issued else ""
        return answers, backend.token_state.redeemed, bearers, bearers.count(f"Bearer {new_token}")

    answers, redeemed, bearers, with_new_token = asyncio.run(scenario())

    problems = [
        (kind, stream, p)
        for (kind, stream), a in zip(kinds, answers, strict=True)
        if (p := finished_properly(kind, stream, a))
    ]
    assert problems == []
    assert redeemed == ["rt-0"]  # one refresh for all 200
    assert with_new_token == CONCURRENCY  # every request finally went out with the new token
    stale = len(bearers) - with_new_token
    if case == "revoked":
        assert stale > 0  # requests did meet the 401 (and recovered with the one refreshed token)
    else:
        assert stale == 0  # a proactive refresh sends no request with the old token
    written = json.loads((home / "auth.json").read_text())
    assert written["tokens"]["refresh_token"] == "rt-1"
