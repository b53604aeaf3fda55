"""The command line: thin — parse arguments, call the library, map errors to exit codes."""

import gc

# A vmsec process allocates its objects mostly to keep them (modules, facts, findings): with CPython's
# default threshold (700 new containers) the cycle collector ran ≈ 60 times in a 80 ms vulnerability
# scan, walking the same survivors again and again — 5 ms of it, 9 ms on a full-size feed
# (docs/performance.md). A larger young generation still collects garbage cycles, just in bigger,
# rarer passes; memory held by uncollected cycles stays bounded by the threshold.
gc.set_threshold(50_000, 20, 10)
