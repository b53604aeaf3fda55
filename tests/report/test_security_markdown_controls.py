"""Markdown reports are read in terminals too: no C0 or C1 control character (ESC, CSI) gets through."""

from __future__ import annotations

from vmsec.report.markdown import md_escape


def test_md_escape_replaces_c0_and_c1_controls() -> None:
    out = md_escape("a\x1b[2Jb\x9b31mc\x9d0;t\x9cd\x85e")
    assert not any(0x00 <= ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in out)
