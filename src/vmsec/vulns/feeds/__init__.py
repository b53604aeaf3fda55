"""Advisory feeds: one module per feed, each turning the feed's own format into
:class:`vmsec.vulns.model.AffectedPackage` (or KEV / EPSS rows). Parsers are pure: the downloader
and the database hand them bytes."""

# Each feed module has ``recognise(name, data) -> ParsedFeed | None``; the first that claims a file
# parses it. Order matters only where formats overlap: specific shapes before the tracker's generic
# JSON object. Adding a feed is one module and one line here.
FEED_MODULES: tuple[str, ...] = (
    "vmsec.vulns.feeds.osv",
    "vmsec.vulns.feeds.kev",
    "vmsec.vulns.feeds.epss",
    "vmsec.vulns.feeds.alpine_secdb",
    "vmsec.vulns.feeds.debian_tracker",
)
