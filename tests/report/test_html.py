"""The HTML report: self-contained, escaped, and working in a real headless Chromium.

Browser tests drive Debian's chromium through Playwright (no browser download): the page loads
nothing from the network, shows the counts, filters hide rows, VM cards drill down, hostile strings
stay text, and it renders at desktop and phone widths (screenshots checked for real content).
"""

from __future__ import annotations

import base64
import html
import re
import struct
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Dialog, Page, expect, sync_playwright
from report_scans import XSS, golden_catalog, render_text, synthetic_scan

from vmsec.checks.catalog import Catalog
from vmsec.findings import Status
from vmsec.report.html import embed_json
from vmsec.results import ScanResult

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]


def test_self_contained_no_remote_resources(sample_scan: ScanResult, catalog: Catalog) -> None:
    text = render_text("html", sample_scan, catalog)
    assert text.startswith("<!DOCTYPE html>")
    assert not re.search(r"""(?i)\b(src|href|action|poster|data)\s*=\s*["']?\s*(https?:)?//""", text)
    assert not re.search(r"(?i)@import|url\(", text)
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', text)
    assert csp is not None and html.unescape(csp.group(1)).startswith("default-src 'none';")
    # Hostile strings: never raw markup, in the static HTML or in the embedded JSON.
    assert XSS not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert text.count("<script") == 2  # the JSON data and the report's own script


def test_embed_json_cannot_close_its_script() -> None:
    text = embed_json({"x": "</script><!-- & -->"})
    assert "<" not in text and ">" not in text and "&" not in text


def test_deterministic_and_golden(sample_scan: ScanResult, catalog: Catalog,
                                  golden_text: Callable[[str, str], None]) -> None:
    small = golden_catalog(sample_scan, catalog)
    text = render_text("html", sample_scan, small)
    assert text == render_text("html", sample_scan, small)
    golden_text("sample.html", text)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert CHROMIUM.exists(), "Debian's chromium package is required for the HTML report tests"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


class Loaded:
    def __init__(self, page: Page) -> None:
        self.page = page
        self.requests: list[str] = []
        self.dialogs: list[str] = []
        self.errors: list[str] = []


def _open(browser: Browser, path: Path, width: int = 1280, height: int = 900) -> Loaded:
    page = browser.new_page(viewport={"width": width, "height": height})
    loaded = Loaded(page)
    page.on("request", lambda r: loaded.requests.append(r.url))
    def on_dialog(dialog: Dialog) -> None:
        loaded.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("pageerror", lambda exc: loaded.errors.append(str(exc)))
    page.on("console", lambda m: loaded.errors.append(m.text) if m.type == "error" else None)
    page.goto(path.as_uri())
    page.wait_for_selector("#list .finding")
    return loaded


@pytest.fixture()
def sample_file(sample_scan: ScanResult, catalog: Catalog, tmp_path: Path) -> Path:
    path = tmp_path / "report.html"
    path.write_text(render_text("html", sample_scan, catalog), encoding="utf-8")
    return path


def _rows(page: Page) -> int:
    return page.locator("#list .finding").count()


def test_counts_filters_and_drill_down(browser: Browser, sample_file: Path, sample_scan: ScanResult) -> None:
    loaded = _open(browser, sample_file)
    page = loaded.page
    counts = Counter(f.status for f in sample_scan.findings)
    total = len(sample_scan.findings)
    not_pass = total - counts[Status.PASS]
    assert page.text_content("#total-count") == str(total)
    assert page.text_content("#shown-count") == str(not_pass) and _rows(page) == not_pass
    for status in Status:
        assert page.text_content(f'#status-counts [data-status="{status.value}"] .n') == str(counts[status])
    page.select_option("#f-status", "FAIL")
    assert _rows(page) == counts[Status.FAIL] < not_pass
    assert page.locator("#list .badge.UNKNOWN").count() == 0
    page.select_option("#f-severity", "critical")
    assert _rows(page) == 4 and page.text_content("#shown-count") == "4"
    page.select_option("#f-severity", "")
    page.select_option("#f-status", "")
    assert _rows(page) == total
    page.fill("#f-text", "vnc")
    expect(page.locator("#shown-count")).to_have_text("2")  # the text filter is debounced
    assert _rows(page) == 2
    page.fill("#f-text", "")
    target = page.locator("#f-target option", has_text="Guest OS web01-disk").get_attribute("value")
    assert target is not None
    page.select_option("#f-target", target)
    assert _rows(page) == 3
    # Clicking a status tile filters too.
    page.click('#status-counts [data-status="WAIVED"]')
    assert page.text_content("#shown-count") == "0" and _rows(page) == 0
    page.select_option("#f-target", "")
    assert _rows(page) == counts[Status.WAIVED] == 1
    # A VM card: the exposure summary is there; its findings render when opened.
    gpu = page.locator("details.vm", has=page.locator(".name", has_text="gpu-box"))
    assert "0000:06:12.5 is assigned while the kernel IOMMU is off" in (gpu.text_content() or "")
    assert gpu.locator(".drill .finding").count() == 0
    gpu.locator("summary").click()
    expect(gpu.locator(".drill .finding")).to_have_count(3)  # the toggle event renders them
    detail = gpu.locator(".drill .finding").first
    detail.locator("summary").click()
    text = detail.text_content() or ""
    assert "Why this matters" in text and "Remediation" in text and "Evidence" in text
    page.fill("#vm-filter", "web")
    expect(page.locator("details.vm:visible")).to_have_count(1)
    assert loaded.errors == []
    assert all(u.startswith("file://") for u in loaded.requests), loaded.requests
    page.close()


def test_hostile_strings_stay_text(browser: Browser, sample_file: Path) -> None:
    loaded = _open(browser, sample_file)
    page = loaded.page
    page.select_option("#f-status", "")
    page.locator("#list .finding .msg", has_text=XSS).first.wait_for()
    assert page.locator("#list .finding .msg", has_text=XSS).count() == 1
    assert page.locator(".vm .name", has_text=XSS).count() == 1
    page.locator("#list details").first.evaluate("d => d.open = true")
    assert page.evaluate("document.querySelectorAll('script').length") == 2
    assert loaded.dialogs == [] and loaded.errors == []
    page.close()


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _pixel_stats(page: Page, png: bytes) -> dict[str, float]:
    """Decode the screenshot in the browser (a canvas) and measure it: luminance variance, colours."""
    url = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    stats: dict[str, float] = page.evaluate("""async (url) => {
        const img = new Image(); img.src = url; await img.decode();
        const c = document.createElement('canvas'); c.width = img.width; c.height = img.height;
        const ctx = c.getContext('2d'); ctx.drawImage(img, 0, 0);
        const d = ctx.getImageData(0, 0, c.width, c.height).data;
        let n = 0, sum = 0, sq = 0; const colours = new Set();
        for (let i = 0; i < d.length; i += 4 * 7) {
            const y = 0.299 * d[i] + 0.587 * d[i + 1] + 0.114 * d[i + 2];
            n++; sum += y; sq += y * y; colours.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
        }
        const mean = sum / n; return {variance: sq / n - mean * mean, colours: colours.size};
    }""", url)
    return stats


@pytest.mark.parametrize(("width", "height"), [(1280, 900), (390, 844)])
def test_screenshots_render(browser: Browser, sample_file: Path, tmp_path: Path, width: int,
                            height: int) -> None:
    loaded = _open(browser, sample_file, width, height)
    page = loaded.page
    # Readable on a phone: nothing wider than the viewport.
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    png = page.screenshot(full_page=False)
    (tmp_path / f"report-{width}.png").write_bytes(png)
    assert len(png) > 10_000
    assert _png_size(png) == (width, height)
    blank = browser.new_page()
    stats = _pixel_stats(blank, png)
    blank.close()
    assert stats["variance"] > 100 and stats["colours"] > 20, stats
    page.close()


def test_large_report_pages_findings(browser: Browser, catalog: Catalog, tmp_path: Path) -> None:
    scan = synthetic_scan(catalog, vms=50, per_vm=60)
    path = tmp_path / "big.html"
    path.write_text(render_text("html", scan, catalog), encoding="utf-8")
    page = _open(browser, path).page
    not_pass = sum(1 for f in scan.findings if f.status is not Status.PASS)
    assert page.text_content("#shown-count") == str(not_pass)
    assert _rows(page) == 100  # one page, not thousands of nodes
    page.click("#more")
    assert _rows(page) == 200
    assert page.locator("details.vm").count() == 50
    page.close()


def test_leads_with_what_to_fix_first(browser: Browser, sample_file: Path, sample_scan: ScanResult) -> None:
    """The first section of the report is "Fix first": worst and widest first, each with what to do."""
    page = _open(browser, sample_file).page
    sections = page.evaluate("[...document.querySelectorAll('main > section')].map(s => s.id)")
    assert sections[:3] == ["fix-first", "summary", "exposed"]
    fixes = page.locator("#fix-first li.fix")
    assert fixes.count() >= 5
    first = fixes.first.text_content() or ""
    assert "critical" in first and "KEV" in first and "upgrade libc6 to 1.0-2" in first
    ranks = page.evaluate("[...document.querySelectorAll('#fix-first .fix .badge')].map(b => b.textContent)")
    order = ["critical", "high", "medium", "low", "info"]
    assert [order.index(r) for r in ranks] == sorted(order.index(r) for r in ranks)
    # Hosts and VMs ranked with a hardening score; the worst first.
    rows = page.locator("#exposed tr.unit")
    assert rows.count() >= 3
    assert page.locator("#exposed tr.unit .score").first.text_content() is not None
    assert "critical" in (rows.first.text_content() or "")  # worst first
    page.close()


def test_compliance_view_in_html(browser: Browser, sample_scan: ScanResult, catalog: Catalog,
                                 tmp_path: Path) -> None:
    """--compliance NAME --format html: coverage against the whole benchmark, one row per requirement."""
    import io

    from vmsec.report.compliance import render_compliance

    out = io.StringIO()
    render_compliance(sample_scan, catalog.index(), "disa-vmm-srg", out, "html")
    path = tmp_path / "compliance.html"
    path.write_text(out.getvalue(), encoding="utf-8")
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(path.as_uri())
    assert "of the benchmark's 190 items" in (page.text_content("#coverage") or "")
    assert "inspec" in (page.text_content("#coverage-source") or "")
    assert page.locator("tr.req").count() == 13
    failed = page.locator("tr.req-fail")
    assert failed.count() >= 1 and page.locator('[data-req-status="fail"] .n').text_content() == str(
        failed.count())
    assert XSS not in out.getvalue() or "&lt;script&gt;" in out.getvalue()
    assert errors == []
    page.close()


def test_control_characters_are_shown_not_sent(sample_scan: ScanResult, catalog: Catalog) -> None:
    """ESC, BEL and C1 controls from a scanned machine are visible escapes in the HTML and its data."""
    from msgspec import structs

    hostile = "\x1b[2J\x07\x9b31m"
    findings = tuple(f._replace(message=hostile + f.message) for f in sample_scan.findings)
    text = render_text("html", structs.replace(sample_scan, findings=findings), catalog)
    assert "\x1b" not in text and "\x07" not in text and "\x9b" not in text
    assert "\\x1b[2J" in text  # the static part shows it
    assert "\\u001b[2J" in text and "\\u009b" in text  # the embedded JSON escapes it
