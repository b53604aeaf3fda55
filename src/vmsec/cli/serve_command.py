"""``vmsec serve``: the dashboard and the REST API on uvicorn.

Plain HTTP only on a loopback address; anywhere else ``--tls-cert`` and ``--tls-key`` are required
(and HSTS is sent).
"""

from __future__ import annotations

import ipaddress
import os
from typing import Any

import click

from vmsec.cli import exitcodes
from vmsec.cli.service_options import _die, open_service, service_options


def parse_listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not (port.isascii() and port.isdigit() and len(port) <= 5) or not 0 < int(port) < 65536 \
            or not host:
        raise click.BadParameter(f"expected HOST:PORT, got {value!r}")
    return host.strip("[]"), int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.command("serve")
@click.option(
    "--listen", required=True, metavar="HOST:PORT", help="Address to listen on, e.g. 127.0.0.1:8080."
)
@click.option(
    "--tls-cert",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="TLS certificate (PEM); required unless HOST is a loopback address.",
)
@click.option(
    "--tls-key", type=click.Path(exists=True, dir_okay=False), default=None, help="TLS private key (PEM)."
)
@click.option(
    "--syslog",
    metavar="ADDRESS",
    default=None,
    help="Also send each audit entry to syslog (RFC 5424): udp://HOST:PORT, tcp://HOST:PORT or "
    "unix:///dev/log.",
)
@click.option(
    "--public-url",
    metavar="URL",
    default=None,
    help="The URL users open (WebAuthn binds keys to its host); default from --listen.",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=None,
    help="Worker processes serving requests (default: the number of CPUs this process may use). They "
    "share all state through the store's database.",
)
@service_options
def serve(
    listen: str,
    tls_cert: str | None,
    tls_key: str | None,
    syslog: str | None,
    public_url: str | None,
    workers: int | None,
    store_url: str | None,
    key_file: str | None,
) -> None:
    """Serve the dashboard and the REST API (/api/v1, OpenAPI at /api/v1/openapi.json)."""
    try:
        import uvicorn
    except ImportError:
        _die("vmsec serve needs the 'service' extra: pip install 'vmsec[service]'", exitcodes.USAGE)
    from urllib.parse import urlsplit

    from vmsec.service.audit import SyslogForwarder
    from vmsec.service.core import ServiceConfig
    from vmsec.service.keys import resolve_key_path
    from vmsec.store.location import redact, resolve_url
    from vmsec.web.app import SETTINGS_ENV, worker_settings

    host, port = parse_listen(listen)
    if bool(tls_cert) != bool(tls_key):
        _die("give both --tls-cert and --tls-key", exitcodes.USAGE)
    tls = tls_cert is not None
    if not tls and not is_loopback(host):
        _die(
            f"refusing plain HTTP on {host}: only a loopback address may be served without TLS "
            "(give --tls-cert and --tls-key)",
            exitcodes.USAGE,
        )
    scheme = "https" if tls else "http"
    url = public_url or f"{scheme}://{'localhost' if is_loopback(host) else host}:{port}"
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
    except ValueError:  # 'http://[::1' and other URLs that do not parse
        hostname = None
    if hostname is None or parts.scheme not in ("http", "https"):
        _die(f"--public-url must be an http(s) URL: {url!r}", exitcodes.USAGE)
    config: dict[str, Any] = {
        "tls": tls,
        "rp_id": parts.hostname or "localhost",
        "origin": f"{parts.scheme}://{parts.netloc}",
    }
    if syslog is not None:
        try:
            SyslogForwarder(syslog)
        except ValueError as exc:  # a bad --syslog address
            _die(str(exc), exitcodes.USAGE)
    n = workers or len(os.sched_getaffinity(0)) or 1
    # Opened here once (the store created or migrated, the key read or created) so that a bad store or
    # key is a clear error before any worker starts; each worker then opens its own.
    resolved_store, resolved_key = resolve_url(store_url), str(resolve_key_path(key_file))
    with open_service(resolved_store, resolved_key, config=ServiceConfig(**config)):
        pass
    os.environ[SETTINGS_ENV] = worker_settings(resolved_store, resolved_key, config, syslog, n)
    processes = f"{n} worker process{'es' if n > 1 else ''}"
    click.echo(f"vmsec: serving {url} with {processes} (store {redact(resolved_store)})", err=True)
    uvicorn.run(
        "vmsec.web.app:worker_app",
        factory=True,
        workers=n,
        host=host,
        port=port,
        ssl_certfile=tls_cert,
        ssl_keyfile=tls_key,
        server_header=False,
        proxy_headers=False,
        log_level="warning",
        access_log=False,
    )
