"""Exit codes, named in one place (documented in docs/cli.md)."""

OK = 0  # scan complete and nothing at or above --fail-on
FINDINGS = 1  # at least one FAIL finding at or above --fail-on
USAGE = 2  # bad arguments, options, profile or configuration
INCOMPLETE = 3  # the scan could not run or could not read everything (an input or a check failed)
INTERRUPTED = 130  # Ctrl-C (128 + SIGINT); a partial scan may have been stored (the message says which)
READER_GONE = 141  # 128 + SIGPIPE, as a shell reports a reader that went away (`vmsec … | head`)
