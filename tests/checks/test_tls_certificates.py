"""TLS certificate checks (VMS-DMN-020..022) on facts built here, for what a static fixture cannot pin:
dates relative to the scan's day. The parser side is tested on real PEM files (tests/data/checks)."""

from __future__ import annotations

import pytest

from vmsec.checks.api import Environment, results_of
from vmsec.checks.daemon.tls_certificates import certificate_chain, certificate_validity, key_strength
from vmsec.facts import FileKind, FileStat, Host, Inventory, PrivateKey, TlsFile, X509Certificate
from vmsec.findings import Severity, Status


def cert(not_before: str = "2024-01-01T00:00:00+00:00", not_after: str = "2100-01-01T00:00:00+00:00",
         **kw: object) -> X509Certificate:
    fields: dict[str, object] = dict(
        subject="CN=hv1", issuer="CN=ca", not_before=not_before, not_after=not_after, key_type="rsa",
        key_bits=2048, signature_hash="sha256", is_ca=False, self_signed=False, public_key_id="aa",
        verified_by="/etc/pki/CA/cacert.pem")
    fields.update(kw)
    return X509Certificate(**fields)  # type: ignore[arg-type]


def tls(path: str, purpose: str, **kw: object) -> TlsFile:
    stat = FileStat(path=path, exists=True, kind=FileKind.FILE, mode=0o644, uid=0, gid=0)
    return TlsFile(role=f"libvirtd {purpose}", stat=stat, group="libvirtd", purpose=purpose,
                   **kw)  # type: ignore[arg-type]


def env(today: str) -> Environment:
    return Environment(inventory=Inventory(), host=None, params={"today": today})


@pytest.mark.parametrize(("today", "status", "severity", "words"), [
    ("2099-12-31", Status.FAIL, Severity.LOW, "in 1 days"),  # within the 30-day warning
    ("2099-12-02", Status.FAIL, Severity.LOW, "in 30 days"),  # the last day of the window
    ("2099-12-01", Status.PASS, None, "valid until 2100-01-01"),  # 31 days left: outside it
    ("2099-11-01", Status.PASS, None, "valid until 2100-01-01"),
    ("2100-01-02", Status.FAIL, None, "expired on 2100-01-01 (1 days ago)"),
    ("2023-12-31", Status.FAIL, None, "not valid before 2024-01-01"),
])
def test_validity_is_judged_against_the_scans_day(today: str, status: Status, severity: Severity | None,
                                                  words: str) -> None:
    certificate = tls("/etc/pki/libvirt/servercert.pem", "cert", certificate=cert())
    host = Host(name="h", root="/", live=False, tls_files=(certificate,))
    [result] = results_of(certificate_validity, host, env(today))
    assert (result.status, result.severity) == (status, severity)
    assert words in result.message


def test_warning_window_is_a_profile_parameter() -> None:
    host = Host(name="h", root="/", live=False, tls_files=(tls("/c.pem", "cert", certificate=cert()),))
    params = Environment(inventory=Inventory(), host=None,
                         params={"today": "2099-11-01", "tls_expiry_warning_days": 90})
    [result] = results_of(certificate_validity, host, params)
    assert result.status is Status.FAIL and result.severity is Severity.LOW


def test_unparsable_file_is_unknown_not_pass() -> None:
    host = Host(name="h", root="/", live=False,
                tls_files=(tls("/c.pem", "cert", problem="not a readable PEM certificate"),))
    [result] = results_of(certificate_validity, host, env("2030-01-01"))
    assert result.status is Status.UNKNOWN and "not a readable PEM" in result.message


def test_missing_ca_is_unknown_and_encrypted_key_is_not_compared() -> None:
    files = (tls("/c.pem", "cert", certificate=cert(verified_by=None)),
             tls("/k.pem", "key", private_key=PrivateKey(key_type="other", key_bits=None, public_key_id=None,
                                                         encrypted=True)))
    [result] = results_of(certificate_chain, Host(name="h", root="/", live=False, tls_files=files),
                          env("2030-01-01"))
    assert result.status is Status.UNKNOWN and "no readable CA certificate" in result.message


def at(now: str, today: str | None = None) -> Environment:
    params = {"now": now} if today is None else {"now": now, "today": today}
    return Environment(inventory=Inventory(), host=None, params=params)


@pytest.mark.parametrize(("params", "status", "severity", "words"), [
    # the scan's instant against the certificate's: hours decide within a day
    (at("2026-12-05T12:00:00+00:00"), Status.FAIL, None, "expired on 2026-12-05 (less than a day ago)"),
    (at("2026-12-05T07:59:59+00:00"), Status.FAIL, Severity.LOW, "in 0 days"),
    (at("2026-12-05T09:30:00+01:30"), Status.FAIL, Severity.LOW, "in 0 days"),  # 08:00Z: the last instant
    (at("2026-12-05T09:30:01+01:30"), Status.FAIL, None, "expired"),
    (at("2026-12-01T19:59:59+00:00"), Status.FAIL, None, "not valid before 2026-12-01 20:00:00+00:00"),
    (at("2026-12-01T20:00:00+00:00"), Status.FAIL, Severity.LOW, "in 3 days"),
    # a profile's 'today' of another day is judged from that day's start, not from the scan's instant
    (at("2026-12-05T12:00:00+00:00", today="2026-12-02"), Status.FAIL, Severity.LOW, "in 3 days"),
])
def test_validity_is_judged_against_the_scans_instant(params: Environment, status: Status,
                                                      severity: Severity | None, words: str) -> None:
    certificate = tls("/etc/pki/libvirt/servercert.pem", "cert",
                      certificate=cert(not_before="2026-12-01T20:00:00+00:00",
                                       not_after="2026-12-05T08:00:00+00:00"))
    host = Host(name="h", root="/", live=False, tls_files=(certificate,))
    [result] = results_of(certificate_validity, host, params)
    assert (result.status, result.severity) == (status, severity), result.message
    assert words in result.message


def test_the_engine_gives_checks_the_scans_instant_in_utc() -> None:
    from datetime import UTC, datetime, timedelta, timezone

    from vmsec.checks.catalog import default_catalog
    from vmsec.engine import Evaluation

    catalog = default_catalog()
    evening = datetime(2026, 12, 5, 23, 30, tzinfo=timezone(timedelta(hours=-2)))  # 01:30Z the next day
    params = Evaluation(catalog, now=evening).params
    assert (params["now"], params["today"]) == ("2026-12-06T01:30:00+00:00", "2026-12-06")
    naive = Evaluation(catalog, now=datetime(2026, 12, 5, 8, 0)).params  # a naive clock is UTC
    assert naive["now"] == "2026-12-05T08:00:00+00:00" and naive["today"] == "2026-12-05"
    assert "now" not in Evaluation(catalog, today="2030-01-01").params  # another day, no instant
    clock = Evaluation(catalog).params
    assert abs(datetime.fromisoformat(clock["now"]) - datetime.now(UTC)) < timedelta(minutes=5)


def test_a_key_type_vmsec_does_not_know_is_unknown_not_strong() -> None:
    # an X25519 certificate read as "OTHER None bits" had PASSed; GnuTLS cannot handshake with it
    files = (tls("/c.pem", "cert", certificate=cert(key_type="other", key_bits=None)),)
    host = Host(name="h", root="/", live=False, tls_files=files)
    [result] = results_of(key_strength, host, env("2030-01-01"))
    assert result.status is Status.UNKNOWN


@pytest.mark.parametrize(("curve", "status"), [("secp256r1", Status.PASS), ("secp384r1", Status.PASS),
                                               ("secp256k1", Status.FAIL), ("brainpoolP256r1", Status.FAIL)])
def test_ec_curves_gnutls_cannot_load_fail(curve: str, status: Status) -> None:
    files = (tls("/c.pem", "cert", certificate=cert(key_type="ec", key_bits=256, key_curve=curve)),)
    host = Host(name="h", root="/", live=False, tls_files=files)
    [result] = results_of(key_strength, host, env("2030-01-01"))
    assert result.status is status
