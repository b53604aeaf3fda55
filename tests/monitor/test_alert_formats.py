"""Alert formats (RFC 5424, CEF) with hostile text, and drift at finding level (pure functions)."""

from __future__ import annotations

import io
import smtplib
import unicodedata
import urllib.request
from datetime import UTC, datetime
from email.message import EmailMessage

import orjson
import pytest

from vmsec.findings import Finding, Severity, Status, Target, TargetKind
from vmsec.monitor.alerts import Alert, EmailSink, StreamSink, WebhookSink, cef_line, rfc5424_line
from vmsec.monitor.drift import audited_targets, compare

HOSTILE = 'evil\n<13>1 2026-01-01T00:00:00Z forged vmsec - - - injected] "x"|y=z\\'


def alert(**kw: object) -> Alert:
    values: dict[str, object] = {"at": datetime(2026, 12, 5, 10, 0, 0, 123456, tzinfo=UTC),
                                 "uri": "qemu:///system",
                                 "kind": "drift", "severity": "high", "domain": HOSTILE, "change": "new",
                                 "check_id": "VMS-DOM-071", "fingerprint": "f" * 32,
                                 "message": f"domain {HOSTILE} now fails"}
    values.update(kw)
    return Alert(**values)  # type: ignore[arg-type]


def test_rfc5424_line_cannot_be_forged_by_a_domain_name() -> None:
    line = rfc5424_line(alert(), hostname="hv1")
    assert "\n" not in line and "\r" not in line  # one line: the forged record stays inside it
    assert line.endswith('] domain evil\\x0a<13>1 2026-01-01T00:00:00Z forged vmsec - - - '
                         'injected] "x"|y=z\\ now fails')  # the message: escaped, on the same line
    assert line.startswith("<131>1 2026-12-05T10:00:00.123456Z hv1 vmsec ")  # local0 (16) * 8 + err (3)
    structured = line[line.index("[vmsec@32473 "):]
    assert 'domain="evil\\\\x0a<13>1' in structured and 'injected\\] \\"x\\"|y=z\\\\' in structured
    assert 'check="VMS-DOM-071"' in structured


def test_cef_escapes_header_and_extension_separators() -> None:
    line = cef_line(alert(check_id="A|B"))
    header, _, extension = line.partition("|8|")
    assert header.startswith("CEF:0|vmsec|vmsec|") and header.endswith("|A\\|B|drift new")
    assert "\n" not in line and "cs2=evil\\\\x0a" in extension and "y\\=z\\\\" in extension


def _finding(check: str, status: Status, name: str = "web01", subject: str = "s") -> Finding:
    return Finding(check_id=check, title=f"{check} title", status=status, severity=Severity.HIGH,
                   target=Target(TargetKind.DOMAIN, name, "hv1"), subject=subject,
                   message=f"{check} {status}")


def test_drift_is_a_fail_that_appears_or_goes_away() -> None:
    before = audited_targets([_finding("A", Status.FAIL), _finding("B", Status.PASS),
                              _finding("C", Status.UNKNOWN), _finding("D", Status.FAIL)], {})
    after = audited_targets([_finding("A", Status.FAIL), _finding("B", Status.FAIL),
                             _finding("C", Status.PASS), _finding("D", Status.PASS)], {})
    key = ("domain", "web01")
    changes = {(c.change, c.check_id) for c in compare(before[key], after[key])}
    assert changes == {("new", "B"), ("resolved", "D")}  # UNKNOWN→PASS and a steady FAIL are no drift
    assert before[key].digest != after[key].digest
    assert {c.check_id for c in compare(None, after[key])} == {"A", "B"}  # a new domain's FAILs
    assert compare(before[key], None) == []  # undefined: the lifecycle alert says it
    same = audited_targets([_finding("A", Status.FAIL)], {})
    assert compare(same[key], audited_targets([_finding("A", Status.FAIL)], {})[key]) == []


# Every class of character no output may carry raw: C0/ESC, C1 (CSI), DEL, bidi (override, RLM, ALM),
# zero-width, BOM, line/paragraph separators, and a lone surrogate (a name's undecodable byte).
UNSAFE = "\x1b[2J\x07\x9b2J\x85\x7f\u202e\u200f\u061c\u200b\ufeff\u2028\u2029\udcff"
_CATEGORIES = {"Cc", "Cf", "Zl", "Zp", "Cs"}


def _raw(text: str) -> list[str]:
    """The characters of those categories in ``text`` (a line break ends a JSON or e-mail line)."""
    return sorted({f"U+{ord(c):04X}" for c in text
                   if c != "\n" and unicodedata.category(c) in _CATEGORIES})


def _unsafe_alert() -> Alert:
    return alert(domain=f"vm{UNSAFE}evil", message=f"domain vm{UNSAFE}evil now fails",
                 data={"client": f"id{UNSAFE}"})


def _check_json(text: str) -> None:
    assert not _raw(text), _raw(text)
    doc = orjson.loads(text.encode("utf-8"))  # valid UTF-8, and a strict parser reads it
    body = doc.get("alert", doc)
    assert body["domain"] == "vm" + UNSAFE.replace("\udcff", "\\udcff") + "evil"  # escapes decode back


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_stream_sink_writes_no_raw_control_character(fmt: str) -> None:
    out = io.StringIO()
    StreamSink(out, fmt).send(_unsafe_alert())
    line = out.getvalue()
    assert line.endswith("\n") and line.count("\n") == 1
    if fmt == "json":
        _check_json(line)
    assert not _raw(line) and "evil" in line


def test_webhook_body_escapes_them(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[bytes] = []

    class Response(io.BytesIO):
        def __enter__(self) -> Response:
            return self

        def __exit__(self, *exc: object) -> None:
            pass

    def urlopen(request: urllib.request.Request, timeout: float) -> Response:
        assert isinstance(request.data, bytes)
        sent.append(request.data)
        return Response(b"ok")

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    WebhookSink("http://127.0.0.1:9/hook", b"secret").send(_unsafe_alert())
    (body,) = sent
    _check_json(body.decode("utf-8"))


def test_email_body_escapes_them(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[EmailMessage] = []

    class Smtp:
        def __init__(self, host: str, port: int, timeout: float) -> None:
            pass

        def __enter__(self) -> Smtp:
            return self

        def __exit__(self, *exc: object) -> None:
            pass

        def has_extn(self, name: str) -> bool:
            return False

        def send_message(self, message: EmailMessage) -> None:
            sent.append(message)

    monkeypatch.setattr(smtplib, "SMTP", Smtp)
    EmailSink("relay:25", "vmsec@example.org", ["ops@example.org"]).send(_unsafe_alert())
    (message,) = sent
    _check_json(message.get_content())
    assert not _raw(str(message["Subject"]))
    message.as_bytes()  # the whole message can be written
