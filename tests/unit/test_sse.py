"""The SSE decoder: any split of the bytes gives the same events."""

from hypothesis import example, given, settings
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


def reference_decode(data: bytes) -> list[SSEEvent]:
    """The WHATWG rules applied line by line to the whole input at once (plus dispatch at close)."""
    out: list[SSEEvent] = []
    lines, event, last_id = [], None, None
    text = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").decode("utf-8", "replace")
    for line in [*text.split("\n"), ""]:
        if not line:
            if lines:
                out.append(SSEEvent(event, "\n".join(lines), last_id))
            lines, event = [], None
            continue
        name, sep, value = line.partition(":")
        value = value[1:] if sep and value.startswith(" ") else value
        if not name:
            continue
        if name == "data":
            lines.append(value)
        elif name == "event":
            event = value
        elif name == "id":
            last_id = value
    return out


LINES = [b"event: a", b"event:b", b'data: {"x":1}', b"data:", b"data:nospace", b"data: \xc3\xa9", b": c", b"id: 5"]
LINES += [b"", b"", b"retry: 10", b"data: two\xff"]


@example([b"id: 5", b"", b"data: x", b"", b"event: e", b"data: y", b""], [b"\n"], [])
@settings(max_examples=300)
@given(
    st.lists(st.sampled_from(LINES), max_size=30),
    st.lists(st.sampled_from([b"\n", b"\r\n", b"\r"]), min_size=1, max_size=30),
    st.lists(st.integers(min_value=0, max_value=400), max_size=10),
)
def test_any_stream_any_chunking_matches_the_reference(lines: list[bytes], ends: list[bytes], cuts: list[int]) -> None:
    data = b"".join(line + ends[i % len(ends)] for i, line in enumerate(lines))
    assert decode_in_pieces(data, [c for c in cuts if c <= len(data)]) == reference_decode(data)


def test_a_large_frame_over_many_reads_arrives_whole() -> None:
    decoder = SSEDecoder()
    payload = b"x" * 100_000
    frame = b"event: big\ndata: " + payload + b"\n\n"
    events = [e for i in range(0, len(frame), 1000) for e in decoder.feed(frame[i : i + 1000])]
    assert events == [SSEEvent("big", payload.decode())]
