"""One error tree for vmsec. Foreign exceptions are translated at the boundary that meets them;
only the CLI turns these into messages and exit codes.

Read failures carry an :class:`~vmsec.facts.ErrorKind`: callers decide "absent" versus "unreadable"
on that value, never on the wording of the message.
"""

from __future__ import annotations

from collections.abc import Iterable

from vmsec.facts.common import CollectionRecord, ErrorKind, kind_of_errno

__all__ = [
    "AdvisorySourceError", "CheckDefinitionError", "CollectorError", "ConfigError", "ErrorKind",
    "ParseError", "Problems", "ReadError", "ScanInterrupted", "SourceUnavailable", "StoreError",
    "VmsecError",
]


class VmsecError(Exception):
    """Base of every error vmsec raises on purpose."""


class ConfigError(VmsecError):
    """A user-supplied option, profile or configuration file is invalid."""


class CollectorError(VmsecError):
    """A collector could not gather facts."""


class SourceUnavailable(CollectorError):
    """A whole source cannot be used (libvirt-python missing, URI unreachable, root not a directory)."""

    def __init__(self, message: str, kind: ErrorKind = ErrorKind.IO) -> None:
        super().__init__(message)
        self.kind = kind


class ReadError(CollectorError):
    """One input could not be read or parsed; the scan goes on without it.

    ``kind`` says why (absent, denied, too large …); ``reason`` is the human sentence.
    """

    def __init__(self, source: str, reason: str, kind: ErrorKind = ErrorKind.IO) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason
        self.kind = kind

    @classmethod
    def from_os(cls, source: str, exc: OSError, reason: str | None = None) -> ReadError:
        """The ReadError for a failed system call on ``source``, its kind taken from the errno."""
        return cls(source, reason or exc.strerror or str(exc), kind_of_errno(exc.errno))

    @property
    def absent(self) -> bool:
        """True when the input does not exist (rather than existing and being unreadable)."""
        return self.kind.absent

    def record(self, what: str, source: str | None = None) -> CollectionRecord:
        """This failure as a collection record (errors are results)."""
        return CollectionRecord(source=source or self.source, what=what, ok=False, reason=self.reason,
                                kind=self.kind)


class ParseError(ReadError):
    """The input was read but is not valid for its format. ``line`` is 1-based, when known."""

    def __init__(self, source: str, reason: str, line: int | None = None) -> None:
        super().__init__(source if line is None else f"{source}:{line}", reason, ErrorKind.INVALID)
        self.path = source
        self.line = line


MAX_PROBLEMS = 100


class Problems(list[ReadError]):
    """The in-file problems a parser met while it still returned its fact: one :class:`ReadError`
    per problem, each with its :class:`ErrorKind` (INVALID, TOO_LARGE, LOOP, ABSENT …).

    This is the one way parsers report partial failures (a whole input that cannot be read or parsed
    is raised instead). The list is bounded: the same problem (source, kind, reason) is kept once,
    and after ``limit`` problems the rest are only counted in ``dropped``, so a hostile input cannot
    turn into millions of records. The collector turns each into a :class:`CollectionRecord` with
    its kind, plus one summary record when some were dropped.
    """

    def __init__(self, limit: int = MAX_PROBLEMS) -> None:
        super().__init__()
        self.limit = limit
        self.dropped = 0
        self._seen: set[tuple[str, ErrorKind, str]] = set()

    def append(self, problem: ReadError) -> None:
        key = (problem.source, problem.kind, problem.reason)
        if key in self._seen:
            return
        if len(self) >= self.limit:
            self.dropped += 1
            return
        self._seen.add(key)
        super().append(problem)

    def extend(self, problems: Iterable[ReadError]) -> None:
        for problem in problems:
            self.append(problem)
        if isinstance(problems, Problems):
            self.dropped += problems.dropped

    def __iadd__(self, problems: Iterable[ReadError]) -> Problems:  # type: ignore[override,misc]
        self.extend(problems)
        return self

    def note(self, source: str, reason: str, kind: ErrorKind = ErrorKind.INVALID) -> None:
        """Record a problem found in the text of ``source`` (``path`` or ``path:line``)."""
        self.append(ReadError(source, reason, kind))

    def records(self, what: str) -> list[CollectionRecord]:
        """These problems as failed collection records, with one summary record for the dropped ones."""
        out = [p.record(what) for p in self]
        if self.dropped:
            source = self[-1].source if self else what
            out.append(CollectionRecord(source=source, what=what, ok=False, kind=ErrorKind.TOO_LARGE,
                                        reason=f"{self.dropped} more problems of the same input were not "
                                               f"recorded (at most {self.limit} are kept)"))
        return out


class CheckDefinitionError(VmsecError):
    """A check is declared wrongly (duplicate id, bad signature, missing docstring)."""


class AdvisorySourceError(VmsecError):
    """A vulnerability feed could not be fetched or imported."""


class StoreError(VmsecError):
    """The findings store failed."""


class ScanInterrupted(KeyboardInterrupt):
    """The scan was interrupted (Ctrl-C, SIGINT) — still a :class:`KeyboardInterrupt`.

    ``scan_id`` is the partial scan kept in the findings store (None: nothing was stored);
    ``targets_done`` of ``targets_expected`` targets had been handed to the sinks; ``stage`` is where
    it stopped (collect, check …).
    """

    def __init__(self, *, scan_id: int | None, targets_done: int, targets_expected: int, stage: str) -> None:
        super().__init__(f"interrupted during {stage}")
        self.scan_id = scan_id
        self.targets_done = targets_done
        self.targets_expected = targets_expected
        self.stage = stage
