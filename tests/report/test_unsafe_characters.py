"""One table of characters no output may carry raw (Unicode categories Cc, Cf, Zl, Zp, Cs), the same
for every format: C0 and C1 controls, DEL, bidirectional marks and overrides, zero-width characters,
the BOM, U+2028/U+2029 and the lone surrogates of a guest file name's undecodable bytes. Each must
leave every report renderable (a guest must not hide its findings by breaking its own report), the
output valid UTF-8, and appear only escaped or replaced."""

from __future__ import annotations

import io
import json
import re
import unicodedata
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from msgspec import structs
from report_scans import render_text

from datapaths import DATA, SARIF_SCHEMA
from vmsec.checks.catalog import Catalog
from vmsec.cli.main import cli
from vmsec.facts.common import CollectionRecord
from vmsec.findings import Evidence, Target, TargetKind
from vmsec.report import FORMATS, make_reporter, text
from vmsec.report.compliance import COMPLIANCE_FORMATS, render_compliance
from vmsec.report.json_report import build_document
from vmsec.report.text import UNSAFE_RANGES, json_text, unsafe_pattern, utf8_needs_no_escape, visible
from vmsec.results import Component, OsInventory, ScanResult

CATEGORIES = {"Cc", "Cf", "Zl", "Zp", "Cs"}
# One sample of each class, named for the failure message.
CLASSES = {
    "c0": "\x01\x08",
    "esc": "\x1b[2J\x1b]0;owned\x07",
    "del": "\x7f",
    "c1": "\x9b31m\x85",
    "bidi": "\u202e\u200f\u061c\u2066",
    "zero-width": "\u200b\u2060\xad",
    "bom": "\ufeff",
    "separators": "\u2028\u2029",
    "surrogate": "\udcff\udc80",
    "tag": "\U000e0041",
}


def _raw(text: str) -> list[str]:
    """The table's characters in ``text`` (the oracle is unicodedata, not the code under test); tabs
    and line breaks are a document's own layout."""
    return sorted({f"U+{ord(c):04X}" for c in text
                   if c not in "\t\n\r" and unicodedata.category(c) in CATEGORIES})


def _hostile(scan: ScanResult, bad: str) -> ScanResult:
    """``bad`` in a domain's name, every finding's subject, message and evidence (a file path too),
    the source, a collection record and a guest's OS inventory."""
    target = Target(TargetKind.DOMAIN, f"vm{bad}x", "hv1")
    guest = Target(TargetKind.GUEST, f"disk{bad}x", "hv1")
    findings = tuple(f._replace(subject=f"{bad}{f.subject}", message=f"{f.message}{bad}",
                                evidence=(*f.evidence, Evidence(f"/etc/sudoers.d/x{bad}", bad, bad)),
                                **({"target": target} if f.target.kind is TargetKind.DOMAIN else {}))
                     for f in scan.findings)
    records = (CollectionRecord(source=f"/img/{bad}", what=bad, ok=False, reason=bad),)
    # Package data is file content, read with replacement characters: no lone surrogates there.
    content = bad.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    os = OsInventory(os_id="debian", version_id="12", pretty_name=f"Debian {content}",
                     packages=(Component("dpkg", f"pkg{content}", "1.0"),))
    return structs.replace(scan, source=f"scan {bad}", findings=findings, records=records,
                           targets=(*scan.targets, target, guest),
                           os_inventories={**scan.os_inventories, guest: os})


def _render_bytes(fmt: str, scan: ScanResult, catalog: Catalog) -> bytes:
    """The report as ``-o FILE`` writes it: a strict UTF-8 text file."""
    raw = io.BytesIO()
    out = io.TextIOWrapper(raw, encoding="utf-8", newline="")
    make_reporter(fmt).render(scan, catalog.index(), out)
    out.flush()
    return raw.getvalue()


# --- the table -------------------------------------------------------------------------------------------


def test_the_table_is_unicodes_control_format_separator_and_surrogate_characters() -> None:
    """Every character of those categories in this Python's Unicode is in the table; the table holds
    nothing else but characters a later Unicode assigns (unassigned here)."""
    table = {n for a, b in UNSAFE_RANGES for n in range(a, b + 1)}
    expected = {n for n in range(0x110000) if unicodedata.category(chr(n)) in CATEGORIES}
    assert sorted(expected - table) == []
    assert all(unicodedata.category(chr(n)) == "Cn" for n in table - expected)
    assert not any(chr(n).isprintable() for n in table)  # visible() escapes all of them


# How report/text.py's written-out JSON_UTF8_LEADS is derived from UNSAFE_RANGES (less C0).
def _utf8_pattern(sequences: list[bytes]) -> str:
    """A regex (of ``\\xNN`` escapes) matching exactly ``sequences``, as a trie on their bytes; leads
    with the same continuation share a class (``[\\xa0-\\xbf][\\x80-\\xbf]`` for surrogates)."""
    groups: dict[int, list[bytes]] = {}
    for seq in sequences:
        groups.setdefault(seq[0], []).append(seq[1:])
    by_rest: dict[str, list[int]] = {}
    for lead, rests in sorted(groups.items()):
        by_rest.setdefault(_utf8_pattern(rests) if rests != [b""] else "", []).append(lead)
    branches = []
    for rest, leads in by_rest.items():
        spans: list[list[int]] = []
        for b in leads:  # ascending: consecutive bytes as one span
            if spans and spans[-1][1] == b - 1:
                spans[-1][1] = b
            else:
                spans.append([b, b])
        cls = "".join(f"\\x{a:02x}" if a == b else f"\\x{a:02x}-\\x{b:02x}" for a, b in spans)
        branches.append((f"[{cls}]" if len(leads) > 1 else cls) + rest)
    return branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"


def _utf8_leads(keep: str) -> tuple[tuple[bytes, bytes | None], ...]:
    """The UTF-8 (surrogates: ``surrogatepass``) of the characters ``unsafe_class(keep)`` matches, by
    first byte: that byte, and a regex of the sequences it starts (None: the byte alone is one)."""
    by_lead: dict[int, list[bytes]] = {}
    for a, b in text._unsafe_code_points(keep):
        for n in range(a, b + 1):
            seq = chr(n).encode("utf-8", "surrogatepass")
            by_lead.setdefault(seq[0], []).append(seq)
    leads: list[tuple[bytes, bytes | None]] = []
    for lead, seqs in sorted(by_lead.items()):
        pattern = None if len(seqs[0]) == 1 else _utf8_pattern(seqs).encode("ascii")
        leads.append((bytes((lead,)), pattern))
    return tuple(leads)


def test_the_written_out_utf8_leads_are_the_table() -> None:
    assert list(_utf8_leads(keep=text._C0)) == list(text.JSON_UTF8_LEADS)


def test_visible_shows_each_class_as_escapes() -> None:
    shown = visible("".join(CLASSES.values()))
    assert not _raw(shown)
    assert "\\x1b[2J" in shown and "\\u202e" in shown and "\\udcff" in shown and "\\U000e0041" in shown


def test_byte_search_and_character_search_agree() -> None:
    """write_json_utf8 decides on orjson's bytes what json_text decides on text: every character
    (the planes that hold any of the table's) alone and in plain text."""
    for n in (*range(0x20, 0x20000), *range(0xE0000, 0xE1000)):
        c = chr(n)
        data = f"plain {c} text — …".encode("utf-8", "surrogatepass")
        assert utf8_needs_no_escape(data) is (unsafe_pattern().search(c) is None), f"U+{n:04X}"


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_json_text_escapes_each_class_and_keeps_valid_unicode(name: str) -> None:
    bad = CLASSES[name]
    text = json_text(json.dumps({"k": f"a{bad}b"}, ensure_ascii=False))
    assert not _raw(text)
    text.encode("utf-8")  # no lone surrogate left
    decoded = orjson.loads(text)["k"]  # a strict parser reads it
    if name == "surrogate":  # shown as text, as the terminal and the store show it
        assert decoded == "a\\udcff\\udc80b"
    else:  # escapes: the decoded string is the original
        assert decoded == f"a{bad}b"


# --- every format ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CLASSES))
@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_every_format_renders_each_class_escaped(fmt: str, name: str, sample_scan: ScanResult,
                                                 catalog: Catalog) -> None:
    data = _render_bytes(fmt, _hostile(sample_scan, CLASSES[name]), catalog)
    text = data.decode("utf-8")  # strict: valid UTF-8
    assert not _raw(text), f"{fmt} writes raw {name} characters: {_raw(text)}"
    if fmt in ("json", "sarif", "cyclonedx"):
        orjson.loads(data)  # a strict parser reads the whole document


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_the_json_report_decodes_to_the_guests_text(name: str, sample_scan: ScanResult) -> None:
    bad = CLASSES[name]
    doc = build_document(_hostile(sample_scan, bad))  # orjson.loads: strict
    shown = "\\udcff\\udc80" if name == "surrogate" else bad
    names = {t["name"] for t in doc["targets"]}
    assert f"vm{shown}x" in names
    assert all(f["subject"].startswith(shown) and f["message"].endswith(shown)
               and f["evidence"][-1]["source"] == f"/etc/sudoers.d/x{shown}" for f in doc["findings"])


def _sarif_valid(doc: dict[str, Any]) -> None:
    import jsonschema

    schema = json.loads(SARIF_SCHEMA.read_text(encoding="utf-8"))
    validator = jsonschema.Draft4Validator(schema, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER)
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:10])


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_sarif_stays_valid_and_points_at_the_files_bytes(name: str, sample_scan: ScanResult,
                                                         catalog: Catalog) -> None:
    doc = orjson.loads(_render_bytes("sarif", _hostile(sample_scan, CLASSES[name]), catalog))
    _sarif_valid(doc)
    uris = {loc["physicalLocation"]["artifactLocation"]["uri"] for r in doc["runs"][0]["results"]
            for loc in r["locations"] if "physicalLocation" in loc}
    if name == "surrogate":  # the name's undecodable bytes, percent-encoded as they were
        assert "file:///etc/sudoers.d/x%FF%80" in uris
    assert all(u.isascii() and u.isprintable() for u in uris)


@pytest.mark.parametrize("fmt", ["markdown", "junit"])
def test_markdown_and_junit_replace_them(fmt: str, sample_scan: ScanResult, catalog: Catalog) -> None:
    text = render_text(fmt, _hostile(sample_scan, "".join(CLASSES.values())), catalog)
    assert "\ufffd" in text and not _raw(text)


@pytest.mark.parametrize("fmt", ["terminal", "csv"])
def test_terminal_and_csv_show_them_as_escapes(fmt: str, sample_scan: ScanResult, catalog: Catalog) -> None:
    text = render_text(fmt, _hostile(sample_scan, "".join(CLASSES.values())), catalog)
    assert "\\u202e" in text and "\\u200b" in text and "\\udcff" in text and not _raw(text)


def test_the_html_data_block_is_strict_json(sample_scan: ScanResult, catalog: Catalog) -> None:
    bad = "".join(CLASSES.values())
    text = _render_bytes("html", _hostile(sample_scan, bad), catalog).decode("utf-8")
    m = re.search(r'<script type="application/json" id="vmsec-data">(.*?)</script>', text, re.S)
    assert m is not None
    strings: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, str):
            strings.append(value)
        elif isinstance(value, list | dict):
            for item in value.values() if isinstance(value, dict) else value:
                walk(item)

    walk(orjson.loads(m.group(1)))  # strict JSON; the guest's text decoded back, its bytes shown
    assert any(bad.replace("\udcff\udc80", "\\udcff\\udc80") in s for s in strings)


@pytest.mark.parametrize("fmt", COMPLIANCE_FORMATS)
def test_the_compliance_view_renders_them_escaped(fmt: str, sample_scan: ScanResult,
                                                  catalog: Catalog) -> None:
    raw = io.BytesIO()
    out = io.TextIOWrapper(raw, encoding="utf-8", newline="")
    result = render_compliance(_hostile(sample_scan, "".join(CLASSES.values())), catalog.index(),
                               "disa-vmm-srg", out, fmt)
    out.flush()
    assert any(r.findings for r in result.requirements)
    text = raw.getvalue().decode("utf-8")
    assert not _raw(text), f"compliance {fmt} writes raw characters: {_raw(text)}"
    if fmt == "json":
        orjson.loads(raw.getvalue())


# --- the CLI's other JSON: diff, fleet status -------------------------------------------------------------

# What a libvirt domain name can hold (XML 1.0 carries C1 and DEL as character references, not C0).
XML_NAME = "vm&#x9b;&#x85;&#x7f;\u202e\u200f\u061c\u2066\u200b\ufeff\u2028\u2060x"
NAME = "vm\x9b\x85\x7f\u202e\u200f\u061c\u2066\u200b\ufeff\u2028\u2060x"


def test_diff_json_escapes_them(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'history.sqlite'}"
    fixtures = DATA / "checks" / "VMS-DOM-020"
    for name, fixture in (("a", "vnc-loopback.PASS.xml"), ("b", "vnc-any.FAIL.xml")):  # a FAIL is new in b
        (tmp_path / name).mkdir()
        xml = (fixtures / fixture).read_text(encoding="utf-8").replace("<name>vm1</name>",
                                                                        f"<name>{XML_NAME}</name>")
        (tmp_path / name / "vm.xml").write_text(xml, encoding="utf-8")
        result = CliRunner().invoke(cli, ["scan", "xml", str(tmp_path / name), "--store", store, "-q",
                                          "--format", "json", "-o", str(tmp_path / f"{name}.json")])
        assert result.exit_code in (0, 1), result.output
    result = CliRunner().invoke(cli, ["diff", "previous", "latest", "--store", store, "--format", "json"])
    assert result.exit_code == 0, result.output
    assert not _raw(result.output), _raw(result.output)
    doc = orjson.loads(result.output.encode("utf-8"))
    (target,) = (t for t in doc["targets"] if t["new"])
    assert target["name"] == NAME  # escapes: decoded, the name is the guest's


def test_fleet_status_json_escapes_them(tmp_path: Path) -> None:
    from vmsec.fleet.inventory import parse_inventory
    from vmsec.fleet.runs import RunOptions, create_run, fail_attempt, start_attempt
    from vmsec.store import open_store

    store_url = f"sqlite:///{tmp_path / 'fleet.sqlite'}"
    inventory = parse_inventory({"targets": [{"kind": "xml", "path": f"/nonexistent/{NAME}"}]})
    with open_store(store_url) as store:
        run = create_run(store, inventory.targets, source=f"src {NAME}", mode="local", options=RunOptions())
        attempt = start_attempt(store, run.id, inventory.targets[0].key, worker=f"w {NAME}", token=run.token)
        assert attempt is not None
        fail_attempt(store, attempt, f"could not read {NAME}", final=True)
    result = CliRunner().invoke(cli, ["fleet", "status", "--store", store_url, "--format", "json"])
    assert not _raw(result.output), _raw(result.output)
    doc = orjson.loads(result.output.encode("utf-8"))
    assert doc["source"] == f"src {NAME}" and doc["targets"][0]["reason"] == f"could not read {NAME}"
