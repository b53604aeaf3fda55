"""APT's configuration syntax (apt.conf(5)) as apt 2.6's ``ReadConfigFile`` reads it.

Lines are stripped (tabs are eight blanks); ``//`` and ``#`` start a comment outside quotes (``#clear``
and ``#include`` are directives), ``/* … */`` too and may span lines. What remains is split at ``{``,
``;`` and ``}`` outside quotes — a statement may span lines (``Key # note`` then ``"true";``) and a
``}`` ends the statement before it. A statement is a tag and a value: the tag as ``ParseQuoteWord``
reads it (quotes removed, ``%52`` decoded: ``"Acquire::X"`` and ``Acquire::%58`` are ``Acquire::X``),
the value as ``ParseCWord`` (quoted strings) or ``ParseQuoteWord`` reads it; a value alone is a list
item of the enclosing scope. ``#clear X`` empties the whole tree under X; ``#include`` reads a file
(or a directory, ending in ``/``) of the guest. A syntax error, an ``#include`` of a file or directory
that does not exist, or includes nested more than ten deep make apt refuse its whole configuration:
every apt program (``apt-config``, ``apt-get``, python-apt's ``init_config``) then exits with an
error. The first such place is kept (:attr:`AptConfig.refused`), what was read before it stays, and
the rest is recorded as unread.
Keys compare case-insensitively; ``Binary::NAME::KEY`` is also read as ``KEY`` (apt applies it when
that program runs) — but not in the tree of lists python-apt reads (:meth:`AptConfig.items`). APT
reads the files of /etc/apt/apt.conf.d with the names ``GetListOfFilesInDir`` accepts (see
:func:`apt_part_names`), in name order, then /etc/apt/apt.conf; a later value wins and list items
accumulate.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from msgspec import Struct, field

from vmsec.errors import ErrorKind, ReadError
from vmsec.parsers.system._common import CONFIG_LIMIT, DIR_LIMIT, Errors, list_dir, read_optional, unreadable
from vmsec.reading import Reader

MAX_LINES = 200_000
MAX_INCLUDE_DEPTH = 10  # apt: "Too many nested includes" for an #include in a file nested deeper
MAX_FILES = 256
_BLANKS = " \t\n\v\f\r"
_DIRECTIVES = ("clear", "include", "x-apt-configure-index")
_QUOTE_OR_PERCENT = re.compile(r'%([0-9A-Fa-f]{2})|"')
_STRTOL = re.compile(r"[ \t\n\v\f\r]*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)")
_BINARY = re.compile(r"^binary::[^:]+::(.+)$")


class AptConfig(Struct):
    values: dict[str, tuple[str, str]] = field(default_factory=dict)  # key -> (value, "path:line")
    # The tree's children, in order, as ``value_list`` (python-apt) lists them: parent key -> child
    # name -> [value, "path:line"]; an anonymous item (a value without a tag) is a child of its own.
    children: dict[str, dict[str | int, list[str]]] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    tree: dict[str, tuple[str, str]] = field(default_factory=dict)  # key -> value, Binary:: scopes apart
    # "path:line: reason" of the first place apt refuses (see the module docstring); apt reads no
    # further, and no apt program runs until it is fixed.
    refused: str = ""

    def get(self, key: str) -> tuple[str, str] | None:
        """The value apt's own programs see (``Binary::PROGRAM::KEY`` included)."""
        return self.values.get(key.lower())

    def tree_get(self, key: str) -> tuple[str, str] | None:
        """The value of the tree itself, as python-apt and apt's start-up read it: no Binary:: scope."""
        return self.tree.get(key.lower())

    def items(self, key: str) -> list[tuple[str, str]]:
        """The values of ``key``'s direct children, named or not, in the order apt created them — what
        python-apt's ``value_list`` gives unattended-upgrades; never ``key``'s own value."""
        return [(value, origin) for value, origin in self.children.get(key.lower(), {}).values()]

    def set(self, item: str, value: str, origin: str) -> None:
        literal = item.lower()
        for key in _keys(item):
            # The tree python-apt reads has no Binary:: scopes (apt's own programs apply them).
            tree = key == literal
            if key.endswith("::"):  # a value without a tag: an item of the enclosing list
                if tree:
                    self._node(key[:-2], origin)
                    siblings = self.children.setdefault(key[:-2], {})
                    siblings[len(siblings)] = [value, origin]
            else:
                self.values[key] = (value, origin)
                if tree:
                    self.tree[key] = (value, origin)
                    self._node(key, origin)[0:2] = [value, origin]

    def _node(self, key: str, origin: str) -> list[str]:
        """The node ``key`` in its parent's children, created (with its ancestors, valueless) if new:
        a named child keeps the place it was first given."""
        parent, sep, name = key.rpartition("::")
        if not sep or not name:
            return ["", origin]  # a top-level key: no list holds it
        self._node(parent, origin)
        siblings = self.children.setdefault(parent, {})
        node = siblings.get(name)
        if node is None:
            node = siblings[name] = ["", origin]
        return node

    def clear(self, tree: str) -> None:
        """``#clear tree``: the setting and everything under it."""
        for name in _keys(tree):
            for table in (self.values, self.tree, self.children):
                for key in [k for k in table if k == name or k.startswith(name + "::")]:
                    del table[key]
            parent, sep, child = name.rpartition("::")
            if sep:
                self.children.get(parent, {}).pop(child, None)


def _keys(item: str) -> list[str]:
    key = item.lower()
    binary = _BINARY.match(key)
    return [key, binary.group(1)] if binary else [key]


def apt_bool(value: str) -> bool | None:
    """A boolean as apt's ``FindB`` reads a setting: an empty value is unset (None: apt keeps its
    default); then ``StringToBool`` — the whole text a number ``strtol`` (base 0, leading blanks
    skipped) reads as 0 or 1, else exactly one of no/false/without/off/disable or
    yes/true/with/on/enable in any case; anything else (``2``, ``-1``, ``yes ``) is None."""
    if not value:
        return None
    number = _STRTOL.fullmatch(value)
    if number is not None:
        digits = number.group(2)
        base = 16 if digits[:2].lower() == "0x" else 8 if digits.startswith("0") else 10
        parsed = int(digits, base) * (-1 if number.group(1) == "-" else 1)
        if parsed in (0, 1):
            return parsed == 1
    word = value.lower()
    if word in ("no", "false", "without", "off", "disable"):
        return False
    if word in ("yes", "true", "with", "on", "enable"):
        return True
    return None


def apt_path(config: AptConfig, key: str, default: str) -> str:
    """A file setting under Dir::Etc (Dir::Etc::main, ::SourceList, ::SourceParts) as apt resolves
    it: relative to Dir::Etc (etc/apt/), itself relative to Dir (/); from the tree, as apt's
    start-up reads it (RootDir is not followed)."""
    value = (config.tree_get(key) or (default, ""))[0]
    if value.startswith("/"):
        return value.rstrip("/") or "/"
    etc = (config.tree_get("Dir::Etc") or ("etc/apt/", ""))[0]
    root = (config.tree_get("Dir") or ("/", ""))[0]
    etc = etc if etc.startswith("/") else f"/{root.strip('/')}/{etc}".replace("//", "/")
    return f"{etc.rstrip('/')}/{value}".rstrip("/")


def apt_part_names(names: Iterable[str], extension: str) -> list[str]:
    """The names of a directory that apt's ``GetListOfFilesInDir`` reads, sorted: no leading dot,
    only ASCII letters, digits, ``_ - : .``, not ending in a dot, and with no extension or
    ``extension`` (``conf``, ``list``, ``sources``) — ``debian security.list``, ``x~.list`` and
    ``.20auto-upgrades.conf`` are ignored, ``99x:y`` is read."""
    out = []
    for name in names:
        if name.startswith(".") or name.endswith(".") or not re.fullmatch(r"[A-Za-z0-9_:.-]+", name):
            continue
        if "." in name and name.rsplit(".", 1)[1] != extension:
            continue
        out.append(name)
    return sorted(out)


def _quote_word(text: str) -> tuple[str, str] | None:
    """apt's ``ParseQuoteWord``: (word, rest) — the word runs to white space outside ``"…"`` and
    ``[…]``, its quotes removed and ``%XX`` decoded; None when there is none (or a quote is open)."""
    i = len(text) - len(text.lstrip(" "))
    if i == len(text):
        return None
    while i < len(text) and text[i] not in _BLANKS:
        if text[i] in '"[':
            close = text.find('"' if text[i] == '"' else "]", i + 1)
            if close < 0:
                return None
            i = close
        i += 1
    # one pass, as apt builds the word: a raw quote is dropped, a decoded one (%22) kept; a decoded
    # NUL (%00) ends the C string
    word = _QUOTE_OR_PERCENT.sub(lambda m: chr(int(m.group(1), 16)) if m.group(1) else "", text[:i])
    return word.split("\0", 1)[0], text[i:].lstrip(_BLANKS)


def _c_word(text: str) -> tuple[str, str] | None:
    """apt's ``ParseCWord``: a value made only of quoted strings and blanks (``"a" "b"`` is ``a b``);
    None when anything stands outside quotes."""
    stripped = text.lstrip(" ")
    if not stripped:
        return None
    out: list[str] = []
    i = 0
    while i < len(stripped):
        c = stripped[i]
        if c == '"':
            close = stripped.find('"', i + 1)
            if close < 0:
                return None
            out.append(stripped[i + 1:close])
            i = close + 1
            continue
        if c not in _BLANKS:
            return None
        if not (i > 0 and stripped[i - 1] in _BLANKS):
            out.append(" ")
        i += 1
    return "".join(out), ""


_LINE_COMMENT = re.compile(r'"|//|#')  # what apt's first scan of a line stops at (outside quotes)
_BLOCK_COMMENT = re.compile(r'"|/\*')


def _strip_comments(line: str, in_comment: bool) -> tuple[str, bool]:
    """The line without its comments, and whether a ``/*`` comment is still open after it. One pass
    for ``//`` and ``#``, one for ``/*``, each toggling at quotes as apt does (counting the quotes
    before every candidate again had cost the square of the line: a 1 MiB line took minutes)."""
    if in_comment:
        end = line.find("*/")
        if end < 0:
            return "", True
        line = line[end + 2:]
    in_quote = False
    for match in _LINE_COMMENT.finditer(line):
        if match.group() == '"':
            in_quote = not in_quote
        elif not in_quote and (match.group() == "//" or not line.startswith(_DIRECTIVES, match.start() + 1)):
            line = line[:match.start()]
            break
    fragment: list[str] = []
    kept, position, in_quote = 0, 0, False  # line[kept:] is not yet in the fragment
    while (block := _BLOCK_COMMENT.search(line, position)) is not None:
        position = block.end()
        if block.group() == '"':
            in_quote = not in_quote
            continue
        if in_quote:
            continue
        fragment.append(line[kept:block.start()])
        end = line.find("*/", position)
        if end < 0:
            return "".join(fragment), True
        kept = position = end + 2
    fragment.append(line[kept:])
    return "".join(fragment), False


def parse_apt_conf(text: str, path: str, into: AptConfig, errors: Errors | None,
                   reader: Reader | None = None, depth: int = 0, budget: list[int] | None = None) -> None:
    """Add one file's settings to ``into``, as apt reads them (see the module docstring)."""
    budget = budget if budget is not None else [MAX_FILES]
    stack: list[str] = []
    parent = ""
    buffer = ""
    in_comment = False
    number = 0

    def refuse(reason: str) -> None:
        _refuse(into, errors, f"{path}:{number}", reason)

    lines = text.split("\n")
    cut = len(lines) > MAX_LINES
    if cut:
        unreadable(errors, ReadError(path, f"more than {MAX_LINES} lines; the rest was not read",
                                     ErrorKind.TOO_LARGE))
    for number, raw in enumerate(lines[:MAX_LINES], start=1):
        raw = raw.split("\0", 1)[0]  # apt's ReadLine: a line ends at its first NUL (a zero-filled file)
        fragment, in_comment = _strip_comments(raw.replace("\t", " " * 8).strip(_BLANKS), in_comment)
        if not fragment:
            continue
        in_quote = False
        start = 0
        for i, c in enumerate(fragment):
            if c == '"':
                in_quote = not in_quote
            if in_quote or c not in "{;}":
                continue
            piece = fragment[start:i].strip(_BLANKS)
            buffer += (" " if buffer and piece else "") + piece
            start = i + 1
            if c == "{" and not buffer:
                return refuse("a block starts with no name")
            if not buffer:
                if c == "}" and stack:
                    parent = stack.pop()
                continue
            tag_rest = _quote_word(buffer)
            if tag_rest is None:
                return refuse("malformed tag")
            tag, rest = tag_rest
            word_rest = _c_word(rest) or _quote_word(rest)
            no_word = False
            if word_rest is None:
                word, rest = "", rest
                if c != "{":
                    word, tag = tag, ""
                else:
                    no_word = True
            else:
                word, rest = word_rest
            if rest:
                return refuse("extra junk after value")
            if c == "{":
                stack.append(parent)
                parent = f"{parent}::{tag}" if parent else tag
                tag = ""
            item = tag if not parent else (f"{parent}::{tag}" if c != "{" or tag else parent)
            origin = f"{path}:{number}"
            if tag.startswith("#"):
                if parent:
                    return refuse("a directive inside a block")
                if tag[1:] not in _DIRECTIVES:
                    return refuse(f"unsupported directive {tag}")
                if tag == "#clear":
                    into.clear(word)
                elif tag == "#include":
                    _include(word, path, number, into, errors, reader, depth, budget)
                    if into.refused:  # apt stops at the first refusal, in an included file too
                        return None
            elif not tag and not no_word and word == "#clear":
                return refuse("#clear needs an option tree")
            elif not no_word:
                into.set(item, word, origin)
            buffer = ""
            if c == "}" and stack:
                parent = stack.pop()
        remaining = fragment[start:].strip(_BLANKS)
        buffer += (" " if buffer and remaining else "") + remaining
    if buffer and not cut:  # a statement the cap cut short is unread, not apt's error
        refuse("extra junk at end of file")


def _include(target: str, path: str, number: int, into: AptConfig, errors: Errors | None,
             reader: Reader | None, depth: int, budget: list[int]) -> None:
    """``#include FILE;`` or ``#include DIR/;`` — read from the guest, at most ten levels deep."""
    where = f"{path}:{number}"
    if depth >= MAX_INCLUDE_DEPTH + 1:  # apt 2.6 reads an include from depth 10, refuses one from 11
        _refuse(into, errors, where, "too many nested includes")
        return
    if not target:
        _refuse(into, errors, where, "#include names no file")
        return
    if reader is None or budget[0] <= 0:
        unreadable(errors, ReadError(where, f"#include {target} was not read", ErrorKind.TOO_LARGE))
        return
    in_directory = target.endswith("/")
    if in_directory:
        try:
            listed = reader.listdir(target.rstrip("/"), DIR_LIMIT)
        except ReadError as exc:
            if exc.absent or exc.kind in (ErrorKind.NOT_REGULAR, ErrorKind.LOOP):
                # apt: "List of files can't be created as '…' is not a directory"
                _refuse(into, errors, where, f"the included directory {target} is not a directory")
            else:
                unreadable(errors, exc)
            return
        files = [f"{target.rstrip('/')}/{n}" for n in apt_part_names(listed, "conf")]
    else:
        files = [target]
    for included in files:
        budget[0] -= 1
        if budget[0] < 0:
            unreadable(errors, ReadError(where, f"more than {MAX_FILES} configuration files; the rest was "
                                         "not read", ErrorKind.TOO_LARGE))
            return
        try:
            text = reader.read_text(included, CONFIG_LIMIT)
        except ReadError as exc:
            if in_directory and (exc.absent or exc.kind is ErrorKind.NOT_REGULAR):
                continue  # GetListOfFilesInDir skips what is not a regular file (a dangling link)
            if exc.absent or exc.kind is ErrorKind.LOOP:  # apt: "Opening configuration file … (2: …)"
                _refuse(into, errors, where, f"the included file {included} cannot be opened ({exc.reason})")
                return
            if exc.kind is ErrorKind.NOT_REGULAR:  # a directory without its slash: apt-config never returns
                _refuse(into, errors, where, f"the included {included} is not a regular file")
                return
            # what it holds is unknown to the scan
            unreadable(errors, ReadError(included, f"an included apt configuration file that was not read "
                                         f"({exc.reason})", exc.kind))
            continue
        into.files.append(included)
        parse_apt_conf(text, included, into, errors, reader, depth + 1, budget)
        if into.refused:
            return


def _refuse(into: AptConfig, errors: Errors | None, where: str, reason: str) -> None:
    if not into.refused:
        into.refused = f"{where}: {reason}"
    unreadable(errors, ReadError(where, f"apt refuses its configuration here ({reason}); the rest was not "
                                 "read", ErrorKind.INVALID))


def read_apt_config(reader: Reader, errors: Errors | None) -> AptConfig:
    """/etc/apt/apt.conf.d/* (the names apt reads, in order), then /etc/apt/apt.conf."""
    config = AptConfig()
    budget = [MAX_FILES]
    names = apt_part_names(list_dir(reader, "/etc/apt/apt.conf.d", errors), "conf")
    for path in [*(f"/etc/apt/apt.conf.d/{n}" for n in names), None]:
        # apt finds its main file after reading the parts: they may move it (Dir::Etc::main "/dev/null")
        path = path or apt_path(config, "Dir::Etc::main", "apt.conf")
        if path == "/dev/null":
            break
        text = read_optional(reader, path, errors)
        if text is not None:
            config.files.append(path)
            parse_apt_conf(text, path, config, errors, reader, 0, budget)
            if config.refused:  # apt reads no further file
                break
    return config
