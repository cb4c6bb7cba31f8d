"""What codexd passes on from a backend answer: which headers, the catalog's ETag under aliases, and what a
usage limit's error keeps of the backend's answer."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from tornado.httputil import HTTPHeaders

from codexd.models import catalog_etag
from codexd.upstream.answer_headers import passed_on
from codexd.upstream.failures import error_from_answer

LIMIT = b'{"error":{"type":"usage_limit_reached","message":"The usage limit has been reached","plan_type":"plus",'
NOW = 1_777_900_000.0


def test_rate_limit_families_and_the_cli_headers_pass_and_nothing_else():
    headers = HTTPHeaders()
    for name, value in {
        "X-Codex-Primary-Used-Percent": "9",
        "X-Codex-Turn-State": "ts-1",
        "x-premium-secondary-used-percent": "40",
        "x-premium-secondary-reset-at": "1900000000",
        "x-premium-limit-name": "Premium",
        "x-other-limit-name": "no family announced it",
        "OpenAI-Model": "gpt-5.5",
        "x-reasoning-included": "true",
        "x-models-etag": '"abc"',
        "x-request-id": "req_1",
        "cf-ray": "8f-AMS",
        "Set-Cookie": "a=b",
    }.items():
        headers.add(name, value)
    assert passed_on(headers) == {
        "x-codex-primary-used-percent": "9",
        "x-codex-turn-state": "ts-1",
        "x-premium-secondary-used-percent": "40",
        "x-premium-secondary-reset-at": "1900000000",
        "x-premium-limit-name": "Premium",
        "openai-model": "gpt-5.5",
        "x-reasoning-included": "true",
    }
    # A header value with a control character (curl hands lines over as they came) would fail the answer.
    odd = {"x-codex-promo-message": "ding\x07", "x-codex-plan-type": "plus\tpro"}
    assert passed_on(odd) == {"x-codex-plan-type": "plus\tpro"}


def test_without_aliases_the_catalog_keeps_the_backends_etag():
    assert catalog_etag('"abc"', {}) == '"abc"'


def test_with_aliases_the_etag_is_marked_inside_its_quotes():
    aliases = {"fast": "gpt-5.4-mini"}
    strong, weak, bare = (catalog_etag(tag, aliases) for tag in ('"abc"', 'W/"abc"', "abc"))
    assert strong.startswith('"abc-a') and strong.endswith('"')
    assert weak.startswith('W/"abc-a') and weak.endswith('"')
    assert bare.startswith("abc-a") and not bare.endswith('"')
    assert catalog_etag('"abc"', {"fast": "gpt-5.4"}) != strong
    assert catalog_etag('"abc"', dict(aliases)) == strong  # the same aliases, the same tag, after a restart too


@given(st.text(min_size=1), st.text(min_size=1), st.dictionaries(st.text(), st.text(), min_size=1, max_size=3))
def test_two_backend_etags_stay_two(one, other, aliases):
    """The CLI compares the catalog's tag with each answer's: they must match exactly when the backend's do."""
    assert (catalog_etag(one, aliases) == catalog_etag(other, aliases)) == (one == other)


def test_a_usage_limit_keeps_the_backends_answer_and_says_do_not_retry():
    body = LIMIT + b'"resets_at":1777936568,"eligible_promo":null,"resets_in_seconds":13872}}'
    err = error_from_answer(429, body, {"x-codex-primary-used-percent": "100", "cf-ray": "x"}, now=NOW)
    assert err.status == err.upstream_status == 429
    assert err.upstream_error["type"] == "usage_limit_reached" and err.upstream_error["plan_type"] == "plus"
    assert err.retry_after == 13872
    assert err.headers == {"x-codex-primary-used-percent": "100", "x-should-retry": "false"}


def test_a_near_reset_leaves_retrying_to_the_client():
    err = error_from_answer(429, LIMIT + b'"resets_in_seconds":60}}', {}, now=NOW)
    assert err.retry_after == 60 and "x-should-retry" not in err.headers
    unknown = error_from_answer(429, LIMIT[:-1] + b"}}", {}, now=NOW)
    assert unknown.retry_after is None and unknown.headers["x-should-retry"] == "false"


def test_usage_not_included_is_a_403_that_remembers_its_429():
    err = error_from_answer(429, b'{"error":{"type":"usage_not_included","message":"Upgrade"}}', {}, now=NOW)
    assert (err.status, err.upstream_status) == (403, 429)


def test_a_detail_answer_has_no_upstream_error_object():
    err = error_from_answer(400, b'{"detail":"Instructions are not valid"}', {}, now=NOW)
    assert err.upstream_status is None and err.upstream_error == {}
    assert err.message == "Instructions are not valid"
