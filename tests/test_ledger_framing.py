"""The framing pass reads the ledger from its end: it must find what counting every line
finds, for any mix of batches and crash debris."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from auditor.ledger import Scan, _frame_forward, frame_ledger


def _line(seq: int, end: bool, pad: int) -> bytes:
    return (b'{"seq":%d,"prev":"%s","kid":"k","end":%s,"nonce":"n","ct":"%s"}\n'
            % (seq, b"0" * 64, b"true" if end else b"false", b"A" * pad))


def _forward(path: Path) -> Scan:
    """What the line-by-line count finds, as a Scan."""
    scan = Scan()
    with open(path, "rb") as fh:
        good_len, good_lines, _last, lines, torn = _frame_forward(fh)
    scan.good_len, scan.framed_records = good_len, good_lines
    if lines > good_lines:
        scan.tail = (good_lines + 1, good_len,
                     "torn" if torn and lines == good_lines + 1 else "unfinished")
    scan.framed_head = "x" if good_lines else ""
    return scan


@settings(max_examples=300, deadline=None)
@given(batches=st.lists(st.integers(1, 5), max_size=8),
       unfinished=st.integers(0, 3),
       torn=st.integers(0, 300),
       pad=st.integers(0, 40_000))
def test_backward_framing_matches_counting_every_line(batches: list[int], unfinished: int,
                                                      torn: int, pad: int) -> None:
    data = bytearray()
    seq = 0
    for size in batches:  # complete batches: the end mark on each one's last line
        for i in range(size):
            seq += 1
            data += _line(seq, i == size - 1, pad)
    for _ in range(unfinished):  # a batch the writer never finished
        seq += 1
        data += _line(seq, False, pad)
    if torn:
        data += _line(seq + 1, True, pad)[:torn]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ledger.jsonl"
        path.write_bytes(bytes(data))
        scan = Scan()
        frame_ledger(path, scan)
        want = _forward(path)
    assert (scan.good_len, scan.framed_records) == (want.good_len, want.framed_records)
    assert (scan.tail is None) == (want.tail is None)
    if scan.tail is not None and want.tail is not None:
        assert scan.tail[:2] == want.tail[:2]
        assert scan.tail[2].startswith("a torn") == (want.tail[2] == "torn")
    assert bool(scan.framed_head) == bool(want.framed_head)


def test_framing_without_a_readable_seq_falls_back_to_counting(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    path.write_bytes(_line(1, False, 10) + b'{"x":1,"end":true,}\n' + b'{"seq":3')
    scan = Scan()
    frame_ledger(path, scan)
    assert (scan.good_len, scan.framed_records) == (len(_line(1, False, 10)) + 20, 2)
    assert scan.tail is not None and scan.tail[0] == 3
