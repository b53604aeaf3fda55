"""Advisory feeds: one module per feed, each turning the feed's own format into
:class:`vmsec.vulns.model.AffectedPackage` (or KEV / EPSS rows). Parsers are pure: the downloader
and the database hand them bytes."""
