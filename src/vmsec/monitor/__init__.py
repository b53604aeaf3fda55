"""``vmsec monitor``: libvirt domain events → re-audits within seconds → semantic drift alerts.

- :mod:`vmsec.monitor.monitor` — connections, event callbacks, reconnection, the audits;
- :mod:`vmsec.monitor.drift` — an audit compared with the previous one, finding by finding;
- :mod:`vmsec.monitor.alerts` — webhooks (HMAC-signed), syslog (RFC 5424, CEF), e-mail, stdout.

Audits are :func:`vmsec.pipeline.scan` calls; nothing here re-implements the pipeline.
"""
