"""Alerts and where they go: the store, standard output, webhooks (HMAC-signed JSON), syslog (RFC 5424,
or CEF inside RFC 5424) and e-mail.

Every text in an alert may come from a scanned machine (domain names, a console client's claimed
identity, finding messages): control characters never reach a syslog line, a CEF field or the
terminal; JSON (stdout, webhooks, e-mail) escapes them, and bidi and invisible characters, with the
reports' :func:`~vmsec.report.text.json_text`.

Webhook signature: ``X-Vmsec-Signature: sha256=HEX`` where HEX is HMAC-SHA256 with the shared secret
over ``TIMESTAMP + "." + BODY`` and TIMESTAMP is the ``X-Vmsec-Timestamp`` header (Unix seconds) —
a receiver recomputes it, compares in constant time and rejects old timestamps (replays).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import queue
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, TextIO

from vmsec import __version__
from vmsec.report.text import json_text

log = logging.getLogger("vmsec.monitor")

__all__ = ["Alert", "AlertSink", "Dispatcher", "EmailSink", "StreamSink", "SyslogSink", "WebhookSink",
           "cef_line", "rfc5424_line", "sign"]

# RFC 5424 severities for vmsec severities; CEF's 0-10 scale likewise.
_SYSLOG_SEVERITY = {"critical": 2, "high": 3, "medium": 4, "low": 5, "info": 6}
_CEF_SEVERITY = {"critical": 10, "high": 8, "medium": 5, "low": 3, "info": 1}
FACILITY_LOCAL0 = 16


@dataclass(frozen=True, slots=True, kw_only=True)
class Alert:
    """One alert: drift (a FAIL appeared or went away), console (a graphics client connected or left),
    lifecycle (a domain was defined or undefined), connection (libvirt lost, back, resynchronised)."""

    at: datetime
    uri: str
    kind: str
    severity: str
    message: str
    domain: str | None = None
    change: str | None = None
    check_id: str | None = None
    fingerprint: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)
    lag_s: float | None = None  # from the libvirt event to this alert

    def to_json(self) -> dict[str, Any]:
        return {"at": self.at.isoformat(), "uri": self.uri, "kind": self.kind, "severity": self.severity,
                "domain": self.domain, "change": self.change, "check_id": self.check_id,
                "fingerprint": self.fingerprint, "message": self.message, "data": dict(self.data),
                "lag_s": self.lag_s}


class AlertSink(Protocol):
    name: str

    def send(self, alert: Alert) -> None: ...


def plain(value: str, limit: int = 2000) -> str:
    """No control characters (a hostile domain name or identity cannot forge syslog lines)."""
    if not value.isprintable():
        value = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" if ord(c) < 256 else "?" for c in value)
    return value[:limit]


def _json(value: Any, indent: int | None = None) -> str:
    """JSON with no control, bidi or invisible character raw and no lone surrogate (a webhook body
    or an e-mail could not even be encoded): the reports' escaping."""
    return json_text(json.dumps(value, indent=indent, ensure_ascii=False))


# --- syslog -------------------------------------------------------------------------------------------


def _sd_value(value: str) -> str:
    return plain(value, 500).replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def rfc5424_line(alert: Alert, *, hostname: str | None = None, app: str = "vmsec",
                 msg: str | None = None, facility: int = FACILITY_LOCAL0) -> str:
    """``<PRI>1 TIMESTAMP HOST APP PROCID MSGID [vmsec@32473 …] MSG`` (RFC 5424; 32473 is the
    example enterprise number RFC 5612 sets aside for documentation — vmsec has none of its own)."""
    pri = facility * 8 + _SYSLOG_SEVERITY.get(alert.severity, 6)
    host = plain(hostname or socket.gethostname(), 255).replace(" ", "_") or "-"
    params = {"uri": alert.uri, "kind": alert.kind, "severity": alert.severity, "domain": alert.domain,
              "change": alert.change, "check": alert.check_id, "fingerprint": alert.fingerprint}
    sd = " ".join(f'{k}="{_sd_value(str(v))}"' for k, v in params.items() if v is not None)
    stamp = alert.at.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    return (f"<{pri}>1 {stamp} {host} {app} {_pid()} {alert.kind} [vmsec@32473 {sd}] "
            f"{plain(msg if msg is not None else alert.message)}")


def _pid() -> str:
    import os

    return str(os.getpid())


def _cef_header(value: str) -> str:
    return plain(value, 500).replace("\\", "\\\\").replace("|", "\\|")


def _cef_ext(value: str) -> str:
    return plain(value, 1000).replace("\\", "\\\\").replace("=", "\\=")


def cef_line(alert: Alert) -> str:
    """ArcSight CEF: ``CEF:0|vmsec|vmsec|VERSION|SIGNATURE|NAME|SEVERITY|EXTENSIONS``."""
    signature = alert.check_id or f"vmsec-{alert.kind}"
    name = f"{alert.kind} {alert.change}" if alert.change else alert.kind
    ext = {"rt": str(int(alert.at.timestamp() * 1000)), "msg": alert.message, "cs1Label": "uri",
           "cs1": alert.uri, "cs2Label": "domain", "cs2": alert.domain or "", "cs3Label": "fingerprint",
           "cs3": alert.fingerprint or "", "cat": alert.kind}
    extension = " ".join(f"{k}={_cef_ext(v)}" for k, v in ext.items() if v)
    return (f"CEF:0|vmsec|vmsec|{_cef_header(__version__)}|{_cef_header(signature)}|{_cef_header(name)}|"
            f"{_CEF_SEVERITY.get(alert.severity, 1)}|{extension}")


class SyslogSink:
    """Syslog over ``udp://HOST:PORT``, ``tcp://HOST:PORT`` (octet-counted frames, RFC 6587) or
    ``unix:///dev/log``; ``fmt`` ``rfc5424`` or ``cef`` (a CEF message inside an RFC 5424 line)."""

    def __init__(self, url: str, fmt: str = "rfc5424") -> None:
        self.name = f"syslog {url}"
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("udp", "tcp", "unix"):
            raise ValueError(f"syslog target {url!r}: use udp://HOST:PORT, tcp://HOST:PORT or unix:///PATH")
        if fmt not in ("rfc5424", "cef"):
            raise ValueError(f"syslog format {fmt!r}: rfc5424 or cef")
        self.scheme, self.fmt = parts.scheme, fmt
        self.address: Any = parts.path if parts.scheme == "unix" else (parts.hostname or "127.0.0.1",
                                                                       parts.port or 514)
        self._sock: socket.socket | None = None

    def _socket(self) -> socket.socket:
        if self._sock is None:
            if self.scheme == "udp":
                self._sock = socket.socket(socket.AF_INET6 if ":" in self.address[0] else socket.AF_INET,
                                           socket.SOCK_DGRAM)
            elif self.scheme == "tcp":
                self._sock = socket.create_connection(self.address, timeout=5)
            else:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        return self._sock

    def send(self, alert: Alert) -> None:
        line = rfc5424_line(alert, msg=cef_line(alert) if self.fmt == "cef" else None)
        data = line.encode("utf-8")
        try:
            sock = self._socket()
            if self.scheme == "udp":
                sock.sendto(data, self.address)
            elif self.scheme == "tcp":
                sock.sendall(f"{len(data)} ".encode() + data)
            else:
                sock.sendto(data, self.address)
        except OSError:
            if self._sock is not None:
                self._sock.close()
            self._sock = None
            raise


# --- webhooks -----------------------------------------------------------------------------------------


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


class WebhookSink:
    """POST each alert as JSON to ``url``, signed with ``secret`` (see the module docstring); retried
    three times with backoff on network errors and 5xx answers."""

    def __init__(self, url: str, secret: bytes | None, timeout: float = 5.0, tries: int = 3) -> None:
        if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            raise ValueError(f"webhook {url!r}: an http:// or https:// URL is needed")
        self.name = f"webhook {url}"
        self.url, self.secret, self.timeout, self.tries = url, secret, timeout, tries

    def send(self, alert: Alert) -> None:
        body = _json({"vmsec": __version__, "alert": alert.to_json()}).encode()
        headers = {"Content-Type": "application/json", "User-Agent": f"vmsec/{__version__}"}
        for attempt in range(1, self.tries + 1):
            timestamp = str(int(time.time()))
            if self.secret is not None:
                headers["X-Vmsec-Timestamp"] = timestamp
                headers["X-Vmsec-Signature"] = sign(self.secret, timestamp, body)
            request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    response.read(1024)
                return
            except urllib.error.HTTPError as exc:
                if exc.code < 500 or attempt == self.tries:
                    raise
            except (urllib.error.URLError, OSError):
                if attempt == self.tries:
                    raise
            time.sleep(0.5 * 2 ** (attempt - 1))


# --- e-mail, standard output ----------------------------------------------------------------------------


class EmailSink:
    """One e-mail per alert through an SMTP relay (``HOST[:PORT]``, STARTTLS when offered)."""

    def __init__(self, relay: str, sender: str, recipients: Sequence[str]) -> None:
        host, _, port = relay.partition(":")
        self.name = f"email via {relay}"
        self.host, self.port = host, int(port or 25)
        self.sender, self.recipients = sender, list(recipients)

    def send(self, alert: Alert) -> None:
        import smtplib
        from email.message import EmailMessage

        message = EmailMessage()
        message["From"], message["To"] = self.sender, ", ".join(self.recipients)
        where = f" {plain(alert.domain, 100)}" if alert.domain else ""
        message["Subject"] = f"[vmsec {alert.severity}] {alert.kind}{where}: {plain(alert.message, 120)}"
        message.set_content(_json(alert.to_json(), indent=2))
        with smtplib.SMTP(self.host, self.port, timeout=10) as smtp:
            if smtp.has_extn("starttls"):
                smtp.starttls()
            smtp.send_message(message)


class StreamSink:
    """Alerts as lines on a stream (standard output): ``text`` or ``json`` (one object per line)."""

    def __init__(self, out: TextIO, fmt: str = "text") -> None:
        self.name, self.out, self.fmt = "stdout", out, fmt

    def send(self, alert: Alert) -> None:
        if self.fmt == "json":
            line = _json(alert.to_json())
        else:
            lag = f" (+{alert.lag_s:.2f} s)" if alert.lag_s is not None else ""
            line = (f"{alert.at:%Y-%m-%d %H:%M:%S} {alert.severity:<8} {alert.kind:<10} "
                    f"{plain(alert.message, 500)}{lag}")
        self.out.write(line + "\n")
        self.out.flush()


class Dispatcher:
    """Delivers alerts to every sink from a thread of its own: a slow webhook never holds up the
    audits. A sink that fails is logged (and counted by ``on_error``) and the others still get it."""

    def __init__(self, sinks: Sequence[AlertSink], on_error: Callable[[str], None] | None = None) -> None:
        self.sinks = list(sinks)
        self.on_error = on_error
        self._queue: queue.Queue[Alert | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="vmsec-alerts", daemon=True)
        self._thread.start()

    def put(self, alert: Alert) -> None:
        self._queue.put(alert)

    def _run(self) -> None:
        while True:
            alert = self._queue.get()
            if alert is None:
                return
            for sink in self.sinks:
                try:
                    sink.send(alert)
                except Exception as exc:  # one broken integration must not stop the others
                    log.warning("alert to %s failed: %s: %s", sink.name, type(exc).__name__, exc)
                    if self.on_error is not None:
                        self.on_error(sink.name)

    def close(self, timeout: float = 10.0) -> None:
        self._queue.put(None)
        self._thread.join(timeout)
