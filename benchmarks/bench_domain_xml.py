"""Domain XML throughput: parse only, and parse + every check, over libvirt's qemuxml2argvdata.

Run: ``.venv/bin/python benchmarks/bench_domain_xml.py [--rounds N] [--corpus DIR]``

The files are read into memory first, so the figures are parser and check cost, not disk I/O.
One process, one thread: the numbers are per core. Target: >= 5,000 domains/s for parse + checks.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path

from vmsec.checks.catalog import default_catalog
from vmsec.engine import run_checks
from vmsec.facts import Domain, Inventory
from vmsec.parsers.domain_xml import parse_domain
from vmsec.parsers.safexml import parse_xml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # datapaths: the in-repo data
from datapaths import LIBVIRT_CORPUS

DEFAULT_CORPUS = LIBVIRT_CORPUS / "qemuxml2argvdata"


def _best(rounds: int, run: Callable[[], None]) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15, help="repeat each measurement, keep the best")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    args = parser.parse_args(argv)

    files = [(str(p), p.read_bytes()) for p in sorted(args.corpus.glob("*.xml"))]
    if not files:
        print(f"no *.xml files in {args.corpus}", file=sys.stderr)
        return 2
    n = len(files)
    catalog = default_catalog()

    def xml_only() -> None:
        for origin, data in files:
            parse_xml(data, origin)

    def parse_only() -> None:
        for origin, data in files:
            parse_domain(data, origin)

    def parse_and_check() -> None:
        domains: list[Domain] = [parse_domain(data, origin) for origin, data in files]
        run_checks(Inventory(domains=tuple(domains), source="bench"), catalog)

    rows = [
        ("safe XML load only", _best(args.rounds, xml_only)),
        ("parse_domain (load + facts)", _best(args.rounds, parse_only)),
        (f"parse + {len(catalog.checks)} checks", _best(args.rounds, parse_and_check)),
    ]
    total_bytes = sum(len(d) for _, d in files)
    print(f"corpus: {n} files, {total_bytes / n:.0f} bytes on average ({args.corpus})")
    print(f"checks: the default catalogue; best of {args.rounds} rounds; one core")
    print(f"{'stage':<34} {'domains/s':>10} {'µs/domain':>10}")
    for label, seconds in rows:
        print(f"{label:<34} {n / seconds:>10,.0f} {seconds / n * 1e6:>10.1f}")
    # Linux reports ru_maxrss in KiB.
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
