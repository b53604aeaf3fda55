"""Where a domain's time goes: each stage of a scan of libvirt 9.0's domain corpus, in one process, as
CPU microseconds per domain (issue 8's "domains per CPU-second" is the sum plus the process around it).

Run: ``.venv/bin/python benchmarks/bench_corpus_stages.py [--rounds N] [--corpus DIR]``

Stages, best of ``--rounds``: collection (read and parse every file into facts), evaluation (every
check, findings built), the fingerprints, and the JSON report's parts (worst-first order, one line of
JSON per finding, the per-target score and counts). The whole-process figure is
``bench_pipeline.py``'s; this one says which stage a change must shrink. The process runs with the
CLI's cycle-collector threshold (``vmsec/cli/__init__.py``): with CPython's default the collector
re-walks the findings kept so far and evaluation looks a third dearer than in a scan.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # datapaths: the in-repo data
import vmsec.cli  # noqa: F401  # the CLI's cycle-collector threshold: each stage costs what it costs in a scan
from datapaths import LIBVIRT_CORPUS
from vmsec.checks.catalog import default_catalog
from vmsec.collectors.xml import collect_xml
from vmsec.engine import Evaluation
from vmsec.findings import fingerprints_of
from vmsec.report.json_report import _finding_lines, _score
from vmsec.report.summary import batch_order_indices
from vmsec.results import ScanCounts, TargetBatch


def best(rounds: int, work: Callable[[], object]) -> float:
    times = []
    for _ in range(rounds):
        start = time.process_time()
        work()
        times.append(time.process_time() - start)
    return min(times)


def _lines_of_report(batches: list[TargetBatch]) -> list[list[bytes]]:
    fragments: dict[tuple[object, ...], bytes] = {}
    return [_finding_lines(b.target, b.findings, b.fingerprints, None, fragments) for b in batches]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--corpus", type=Path, default=LIBVIRT_CORPUS / "qemuxml2argvdata")
    args = parser.parse_args(argv)
    files = sorted(str(p) for p in args.corpus.glob("*.xml"))
    inventory = collect_xml(files)
    evaluation = Evaluation(default_catalog())
    batches = list(evaluation.evaluate(inventory))
    n = len(batches)
    findings = sum(len(b.findings) for b in batches)
    stages: dict[str, Callable[[], object]] = {
        "collection (read, parse, facts)": lambda: collect_xml(files),
        "evaluation (all checks, findings)": lambda: list(evaluation.evaluate(inventory)),
        "fingerprints": lambda: [fingerprints_of(b.findings) for b in batches],
        "report: worst-first order": lambda: [batch_order_indices(b.findings) for b in batches],
        # One cache of encoded pieces for the whole report, as the JSON stream keeps it.
        "report: a JSON line per finding": lambda: _lines_of_report(batches),
        "report: score per target": lambda: [_score(b.findings) for b in batches],
        "report: counts per target": lambda: [ScanCounts.of(b.findings) for b in batches],
    }
    print(f"corpus: {len(files)} files, {n} targets, {findings:,} findings; CPU µs per target, "
          f"best of {args.rounds}")
    total = 0.0
    for name, work in stages.items():
        cost = best(args.rounds, work) / n * 1e6
        total += cost
        print(f"  {name:<36} {cost:7.1f} µs")
    print(f"  {'sum of the stages':<36} {total:7.1f} µs  (→ {1e6 / total:,.0f} domains per CPU-second "
          "before the process around them)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
