"""The SSE decoder: any split of the bytes gives the same events."""

from hypothesis import given
from hypothesis import strategies as st

from codexd.sse import SSEDecoder, SSEEvent, encode

STREAM = (
    b": comment\r\n"
    b'event: response.created\r\ndata: {"a": 1}\r\n\r\n'
    b"data: line one\ndata: line two\n\n"
    b"event: x\rdata: cr only\r\r"
    b"id: 7\ndata:no-space\n\n"
)
EXPECTED = [
    SSEEvent("response.created", '{"a": 1}'),
    SSEEvent(None, "line one\nline two"),
    SSEEvent("x", "cr only"),
    SSEEvent(None, "no-space", "7"),
]


def decode_in_pieces(data: bytes, cuts: list[int]) -> list[SSEEvent]:
    decoder = SSEDecoder()
    out: list[SSEEvent] = []
    last = 0
    for cut in sorted(set(cuts)):
        out += decoder.feed(data[last:cut])
        last = cut
    out += decoder.feed(data[last:])
    return out + decoder.close()


def test_whole_stream() -> None:
    assert decode_in_pieces(STREAM, []) == EXPECTED


@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=12))
def test_every_chunking_gives_the_same_events(cuts: list[int]) -> None:
    assert decode_in_pieces(STREAM, cuts) == EXPECTED


def test_byte_by_byte() -> None:
    assert decode_in_pieces(STREAM, list(range(len(STREAM)))) == EXPECTED


def test_final_event_without_blank_line_is_dispatched_at_close() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: tail") == []
    assert decoder.close() == [SSEEvent(None, "tail")]


def test_comments_only_yield_nothing() -> None:
    assert decode_in_pieces(b": ping\n\n: ping\n\n", []) == []


def test_encode_round_trips() -> None:
    frame = encode({"type": "x", "text": "a\nb"}, "x") + encode("multi\nline")
    assert decode_in_pieces(frame, []) == [SSEEvent("x", '{"type":"x","text":"a\\nb"}'), SSEEvent(None, "multi\nline")]


def test_invalid_utf8_does_not_raise() -> None:
    assert decode_in_pieces(b"data: \xff\xfe\n\n", []) == [SSEEvent(None, "\ufffd\ufffd")]
