"""``vmsec monitor URI...``: re-audit domains as libvirt reports changes, and alert on semantic drift
(see :mod:`vmsec.monitor`)."""

from __future__ import annotations

import os
import signal
import sys
import threading
from typing import Any

import click

from vmsec.cli import exitcodes
from vmsec.cli.main import die
from vmsec.cli.options import Seconds


@click.command("monitor")
@click.argument("uris", nargs=-1, required=True, metavar="URI...")
@click.option("--store", "store_url", metavar="URL", default=None,
              help="Where events, alerts and each domain's last audit are kept (default: $VMSEC_STORE, "
                   "else SQLite in the user data dir).")
@click.option("--profile", default="multi-tenant", show_default=True)
@click.option("--host/--no-host", "include_host", default=None,
              help="Also audit the local host (default: yes for local qemu:/// URIs).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="Alerts on standard output: text lines or one JSON object per line.")
@click.option("--webhook", "webhooks", multiple=True, metavar="URL",
              help="POST every alert as JSON to this URL (repeatable), signed when a secret is given.")
@click.option("--webhook-secret-file", type=click.Path(dir_okay=False, exists=True),
              help="The webhooks' HMAC-SHA256 secret (or $VMSEC_WEBHOOK_SECRET; never on the command line).")
@click.option("--syslog", "syslog_url", metavar="URL",
              help="Send alerts to syslog: udp://HOST:PORT, tcp://HOST:PORT or unix:///dev/log.")
@click.option("--syslog-format", type=click.Choice(["rfc5424", "cef"]), default="rfc5424", show_default=True)
@click.option("--email-to", multiple=True, metavar="ADDRESS", help="E-mail every alert to this address.")
@click.option("--email-from", default="vmsec@localhost", show_default=True)
@click.option("--smtp", default="localhost:25", show_default=True, metavar="HOST[:PORT]")
@click.option("--metrics-port", type=click.IntRange(0, 65535), default=None,
              help="Serve Prometheus metrics on this port (/metrics; 0: any free port, printed).")
@click.option("--metrics-address", default="127.0.0.1", show_default=True)
@click.option("--debounce", type=Seconds(0, 5), default=0.25, show_default=True, metavar="SECONDS",
              help="Wait this long for a burst of events to end before re-auditing.")
@click.option("--reconnect-max", type=Seconds(0.5, 25), default=5.0, show_default=True,
              metavar="SECONDS", help="Longest wait between reconnection tries.")
@click.option("--keep-scans", is_flag=True,
              help="Keep every audit in the findings store too (history, diff).")
@click.option("--guest-audit", is_flag=True,
              help="When a guest agent connects, audit the guests through it (LibvirtSpec guests='agent').")
@click.option("--db", "db_path", type=click.Path(dir_okay=False), help="Vulnerability database.")
def monitor(uris: tuple[str, ...], store_url: str | None, profile: str, include_host: bool | None, fmt: str,
            webhooks: tuple[str, ...], webhook_secret_file: str | None, syslog_url: str | None,
            syslog_format: str, email_to: tuple[str, ...], email_from: str, smtp: str,
            metrics_port: int | None, metrics_address: str, debounce: float, reconnect_max: float,
            keep_scans: bool, guest_audit: bool, db_path: str | None) -> None:
    """Watch libvirt connections: record domain events (lifecycle, devices, metadata, guest agent,
    console access), re-audit within seconds of a change and alert on semantic drift — a FAIL that
    appeared or went away — by webhook, syslog, e-mail and on standard output. Reconnects when
    libvirtd restarts and resynchronises every domain. Runs until interrupted (SIGINT/SIGTERM).
    """
    from vmsec.errors import ConfigError, StoreError, VmsecError
    from vmsec.monitor.alerts import AlertSink, Dispatcher, EmailSink, StreamSink, SyslogSink, WebhookSink
    from vmsec.monitor.monitor import Monitor, MonitorOptions
    from vmsec.profiles import load_profile
    from vmsec.store import open_store
    from vmsec.store.location import resolve_url

    for uri in uris:
        if not uri.isprintable():  # libvirt cannot be handed it: it would be retried for ever
            from vmsec.report.text import visible

            die(f"{visible(uri)}: not a libvirt URI (a control character or a byte that is not UTF-8)",
                exitcodes.USAGE)
    try:
        import libvirt  # noqa: F401
    except ImportError:
        die("libvirt-python is not installed: pip install 'vmsec[libvirt]'", exitcodes.USAGE)
    try:
        load_profile(profile)
        secret = _secret(webhook_secret_file)
        sinks: list[AlertSink] = [StreamSink(sys.stdout, fmt)]
        sinks += [WebhookSink(url, secret) for url in webhooks]
        if syslog_url:
            sinks.append(SyslogSink(syslog_url, syslog_format))
        if email_to:
            sinks.append(EmailSink(smtp, email_from, email_to))
    except (ConfigError, ValueError, OSError) as exc:
        die(str(exc), exitcodes.USAGE)
        return
    url = resolve_url(store_url)
    try:
        store = open_store(url)
    except StoreError as exc:
        die(str(exc), exitcodes.INCOMPLETE)
        return
    metrics = None
    if metrics_port is not None:
        try:
            from vmsec.metrics import Metrics
        except ImportError:
            die("--metrics-port needs prometheus-client: pip install 'vmsec[fleet]'", exitcodes.USAGE)
        metrics = Metrics()
        try:
            port = metrics.serve(metrics_port, metrics_address)
        except OSError as exc:
            die(f"cannot serve metrics on {metrics_address}:{metrics_port}: {exc}", exitcodes.USAGE)
        click.echo(f"metrics on http://{metrics_address}:{port}/metrics", err=True)
    dispatcher = Dispatcher(sinks)
    options = MonitorOptions(store_url=url, profile=profile, include_host=include_host, debounce=debounce,
                             reconnect_max=reconnect_max, keep_scans=keep_scans, guest_audit=guest_audit,
                             advisory_db=db_path)

    def ready(uri: str, domains: int) -> None:
        click.echo(f"monitoring {uri}: {domains} domain{'s' if domains != 1 else ''} audited", err=True)

    watcher = Monitor(uris, options, store, dispatcher, metrics, on_ready=ready)
    stop = threading.Event()

    def interrupted(_signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGINT, interrupted)
    try:
        watcher.start()
        threading.Thread(target=watcher.wait_ready, daemon=True).start()
        stop.wait()
    except VmsecError as exc:
        die(str(exc), exitcodes.INCOMPLETE)
    finally:
        watcher.stop()
        dispatcher.close()
        if metrics is not None:
            metrics.close()
        store.close()


def _secret(path: str | None) -> bytes | None:
    if path is not None:
        with open(path, "rb") as fh:
            value = fh.read(4096).strip()
        if not value:
            raise ValueError(f"{path}: the webhook secret is empty")
        return value
    env = os.environ.get("VMSEC_WEBHOOK_SECRET")
    return env.encode() if env else None
