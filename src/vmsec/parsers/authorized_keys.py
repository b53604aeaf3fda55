"""authorized_keys files → :class:`AuthorizedKey` facts, with the key size read from the key itself.

Line format (sshd(8) "AUTHORIZED_KEYS FILE FORMAT"): ``[options] keytype base64-blob [comment]``.
Options are comma-separated, and double-quoted values may hold commas and spaces. The blob is the
SSH wire encoding (RFC 4253 §6.6): a string with the key type, then for RSA the exponent and the
modulus, for DSA p, q, g, y (mpints), for ECDSA the curve name and the point. The bit length comes
from the modulus / p / curve, so no cryptographic library is needed. A line that cannot be decoded
is kept with ``key_type=None`` so a check can report it.
"""

from __future__ import annotations

import base64
import binascii
import struct
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from vmsec.errors import ErrorKind, Problems, ReadError
from vmsec.facts import Account, AuthorizedKey, evolve

if TYPE_CHECKING:
    from vmsec.reading import Reader

DEFAULT_FILES = (".ssh/authorized_keys", ".ssh/authorized_keys2")
MAX_FILE_BYTES = 1024 * 1024
MAX_KEYS_PER_FILE = 10_000
MAX_ACCOUNTS = 10_000
MAX_KEYS_TOTAL = 100_000
# AuthorizedKeysFile entries looked at: OpenSSH 5.9 to 7.6 refuse more than 256 (MAX_AUTHKEYS_FILES in
# servconf.h); 7.7 dropped the cap, but every entry is a path per account, so more are not examined.
MAX_KEY_FILE_ENTRIES = 256
# Paths built per guest, each counted by its parts (text, %h, %u): 10,000 accounts × a few entries.
MAX_KEY_PATHS = 100_000
PATH_MAX = 4096  # sshd cannot open a longer path
KEY_PREFIXES = ("ssh-", "ecdsa-", "sk-", "rsa-sha2-", "webauthn-sk-")
_CURVE_BITS = {"nistp256": 256, "nistp384": 384, "nistp521": 521}
_FIXED_BITS = {"ssh-ed25519": 256, "sk-ssh-ed25519@openssh.com": 256, "ssh-ed448": 456}


def _read_string(blob: bytes, offset: int) -> tuple[bytes, int]:
    if offset + 4 > len(blob):
        raise ValueError("truncated length")
    (length,) = struct.unpack_from(">I", blob, offset)
    end = offset + 4 + length
    if end > len(blob):
        raise ValueError("truncated field")
    return blob[offset + 4:end], end


def key_bits(blob: bytes) -> tuple[str, int | None]:
    """(key type from inside the blob, bits) of a public key blob; raises ValueError when malformed."""
    name_bytes, offset = _read_string(blob, 0)
    name = name_bytes.decode("ascii")
    if name == "ssh-rsa" or name.startswith("ssh-rsa-cert"):
        if name.startswith("ssh-rsa-cert"):
            _nonce, offset = _read_string(blob, offset)
        _e, offset = _read_string(blob, offset)
        n, _ = _read_string(blob, offset)
        return name, int.from_bytes(n, "big").bit_length()
    if name == "ssh-dss" or name.startswith("ssh-dss-cert"):
        if name.startswith("ssh-dss-cert"):
            _nonce, offset = _read_string(blob, offset)
        p, _ = _read_string(blob, offset)
        return name, int.from_bytes(p, "big").bit_length()
    if name.startswith(("ecdsa-sha2-", "sk-ecdsa-sha2-")):
        if "-cert-" in name:
            _nonce, offset = _read_string(blob, offset)
        curve, _ = _read_string(blob, offset)
        return name, _CURVE_BITS.get(curve.decode("ascii", "replace"))
    base = name.split("-cert-", 1)[0]
    return name, _FIXED_BITS.get(base) or _FIXED_BITS.get(name)


def _split_options(line: str) -> tuple[str, str] | None:
    """(options text, the rest) of a line that starts with options, as sshd's
    ``sshkey_advance_past_options`` walks them (``\\"`` skips both characters); None for an
    unterminated quote, which makes sshd refuse the line."""
    quoted = False
    i = 0
    while i < len(line):
        ch = line[i]
        if not quoted and ch in " \t":
            break
        if ch == "\\" and line[i + 1:i + 2] == '"':
            i += 1
        elif ch == '"':
            quoted = not quoted
        i += 1
    if quoted:
        return None
    return line[:i], line[i:].lstrip(" \t")


def _options(text: str) -> tuple[str, ...]:
    out: list[str] = []
    current: list[str] = []
    quoted = False
    for i, ch in enumerate(text):
        if ch == '"' and (i == 0 or text[i - 1] != "\\"):
            quoted = not quoted
        if ch == "," and not quoted:
            out.append("".join(current))
            current = []
            continue
        current.append(ch)
    out.append("".join(current))
    return tuple(o for o in out if o)


# The options sshd knows (auth-options.c, ``sshauthopt_parse``; names in any case). Any other makes
# it refuse the whole line ("bad key options"), as does a value option without its quotes.
_FLAG_OPTIONS = frozenset({"restrict", "cert-authority", "port-forwarding", "agent-forwarding",
                           "x11-forwarding", "touch-required", "verify-required", "pty", "user-rc",
                           "no-port-forwarding", "no-agent-forwarding", "no-x11-forwarding",
                           "no-touch-required", "no-pty", "no-user-rc"})
_VALUE_OPTIONS = frozenset({"command", "principals", "from", "expiry-time", "environment", "permitopen",
                            "permitlisten", "tunnel"})


def _options_refused(options: tuple[str, ...]) -> bool:
    for option in options:
        name, eq, value = option.partition("=")
        name = name.lower()
        if eq:
            if name not in _VALUE_OPTIONS or len(value) < 2 or value[0] != '"' or value[-1] != '"':
                return True
        elif name not in _FLAG_OPTIONS:
            return True
    return False


# A type name sshd accepts on a key line → the key type the blob must hold (sshkey_type_from_name:
# an RSA signature algorithm names an RSA key, a WebAuthn name its security-key ECDSA key).
_SAME_KEY = {"rsa-sha2-256": "ssh-rsa", "rsa-sha2-512": "ssh-rsa",
             "webauthn-sk-ecdsa-sha2-nistp256@openssh.com": "sk-ecdsa-sha2-nistp256@openssh.com"}
# What sshd's b64_pton skips inside a blob (isspace in the C locale).
_C_SPACE = str.maketrans("", "", " \t\n\v\f\r")


def _key_at(text: str) -> tuple[str, int | None, str | None] | None:
    """(type, bits, comment) of the key at the start of ``text``, as sshd's ``sshkey_read`` reads
    it — type and blob are cut at a space or a tab only —, or None when there is none."""
    declared, sep, rest = _cut_word(text)
    if not sep or not declared.startswith(KEY_PREFIXES):
        return None
    blob_text, _sep, comment = _cut_word(rest.lstrip(" \t"))
    if not blob_text:
        return None
    try:
        inner, bits = key_bits(base64.b64decode(blob_text.translate(_C_SPACE), validate=True))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    if _SAME_KEY.get(declared, declared) != inner:
        return None
    return inner, bits, comment.lstrip(" \t") or None


def _cut_word(text: str) -> tuple[str, str, str]:
    for i, ch in enumerate(text):
        if ch in " \t":
            return text[:i], ch, text[i + 1:]
    return text, "", ""


def parse_authorized_keys(text: str, user: str, path: str) -> tuple[AuthorizedKey, ...]:
    """Keys in one authorized_keys text, read as sshd reads them (auth2-pubkeyfile.c): lines end at
    a newline and, being C strings, at a NUL; blanks are spaces and tabs; a line is a key, or
    options then a key. Comments and blank lines are skipped. A line sshd cannot use (no key it can
    decode, an option it does not know) is kept with ``key_type=None`` so a check can report it.
    More than 10,000 keys raise :class:`ReadError`: the keys past them are unread, not absent."""
    keys: list[AuthorizedKey] = []
    for number, raw in enumerate(text.split("\n"), 1):
        line = raw.partition("\x00")[0].lstrip(" \t")
        if not line or line.startswith("#") or not line.strip():
            continue
        if len(keys) >= MAX_KEYS_PER_FILE:
            raise ReadError(path, f"more than {MAX_KEYS_PER_FILE} key lines; the rest were not read",
                            ErrorKind.TOO_LARGE)
        options: tuple[str, ...] = ()
        found = _key_at(line)
        if found is None:
            split = _split_options(line)
            if split is not None:
                options = _options(split[0])
                found = _key_at(split[1])
                if found is not None and _options_refused(options):
                    found = None
        key_type, bits, comment = found if found is not None else (None, None, None)
        keys.append(AuthorizedKey(user=user, path=path, key_type=key_type, bits=bits, comment=comment,
                                  options=options, line=number))
    return tuple(keys)


_HOME, _USER, _UID = 0, 1, 2  # the %h, %u and %U tokens in a template


def _template(name: str) -> tuple[str | int, ...]:
    """An AuthorizedKeysFile entry as literal text and %h/%u/%U tokens, made once per entry so that
    filling it in for each account costs the number of its parts, not of its characters."""
    parts: list[str | int] = []
    literal: list[str] = []
    i = 0
    while i < len(name):
        if name[i] == "%" and i + 1 < len(name):
            token = name[i + 1]
            if token in "huU":
                if literal:
                    parts.append("".join(literal))
                    literal = []
                parts.append(_HOME if token == "h" else _USER if token == "u" else _UID)
            else:
                literal.append("%" if token == "%" else "%" + token)
            i += 2
            continue
        literal.append(name[i])
        i += 1
    if literal:
        parts.append("".join(literal))
    return tuple(parts)


def _fill(parts: tuple[str | int, ...], user: str, home: str, uid: str = "") -> str:
    path = "".join(p if isinstance(p, str) else home if p == _HOME else user if p == _USER else uid
                   for p in parts)
    if path.startswith("/"):
        return path
    return f"{home}/{path}" if home != "/" else f"/{path}"


def expand_tokens(name: str, user: str, home: str, uid: int | None = None) -> str:
    """An AuthorizedKeysFile entry for one user: ``%h`` home, ``%u`` user, ``%U`` its numeric id,
    ``%%`` a percent sign; a relative path is relative to the home directory (sshd_config(5) TOKENS)."""
    return _fill(_template(name), user, home, "" if uid is None else str(uid))


def _tilde(name: str, homes: dict[str, str]) -> str | None:
    """``~/…`` and ``~user/…`` as sshd expands them when it reads its configuration
    (``tilde_expand_filename`` as uid 0: ``~`` is its home, keyed ""); None for an unknown user."""
    if not name.startswith("~"):
        return name
    user, slash, rest = name[1:].partition("/")
    home = homes.get(user)  # "" for ~ alone: the home of uid 0
    if home is None:
        return None
    return home.rstrip("/") + "/" + rest if slash else home


def key_file_paths(accounts: Iterable[Account], files: Iterable[str] = DEFAULT_FILES, *,
                   source: str = "AuthorizedKeysFile", problems: Problems | None = None,
                   unread: list[str] | None = None) -> list[tuple[str, str, str]]:
    """(user, home, path) of every authorized_keys file sshd would look at: each account with an
    absolute home (and root's /root) × each AuthorizedKeysFile entry (``none`` names no file), tokens
    expanded.

    The work is bounded by the input, not by accounts × entries: at most :data:`MAX_KEY_FILE_ENTRIES`
    distinct entries, :data:`MAX_ACCOUNTS` accounts and :data:`MAX_KEY_PATHS` paths (whole accounts,
    in /etc/passwd order). sshd would look at what a bound leaves out, so each cut is added to
    ``problems`` (TOO_LARGE, named by ``source``: where AuthorizedKeysFile is set, or /etc/passwd) and
    to ``unread`` ("source: reason"). A path longer than PATH_MAX is skipped: sshd cannot open it.
    Compute the list once and hand it on (see :func:`read_authorized_keys`)."""
    def cut(where: str, reason: str) -> None:
        if problems is not None:
            problems.note(where, reason, ErrorKind.TOO_LARGE)
        if unread is not None:
            unread.append(f"{where}: {reason}")

    homes: dict[tuple[str, str], str] = {}  # (user, home) -> its uid as %U writes it
    home_of: dict[str, str] = {}  # for ~user: the first entry of each name, as getpwnam finds it
    dropped = 0
    for account in accounts:
        if account.home and account.home.startswith("/"):
            home_of.setdefault(account.name, account.home)
            if account.uid == 0:
                home_of.setdefault("", account.home)  # ~ is the home of the user sshd runs as
            if len(homes) < MAX_ACCOUNTS:
                homes.setdefault((account.name, account.home.rstrip("/") or "/"),
                                 "" if account.uid is None else str(account.uid))
            else:
                dropped += 1
    if dropped:
        cut("/etc/passwd", f"more than {MAX_ACCOUNTS} accounts with a home directory; the authorized_keys "
            f"files of {dropped} more were not examined")
    if not any(user == "root" for user, _ in homes):
        homes.setdefault(("root", "/root"), "0")
    home_of.setdefault("", home_of.get("root", "/root"))
    names = tuple(dict.fromkeys(f for f in files if f.lower() != "none"))
    if len(names) > MAX_KEY_FILE_ENTRIES:
        cut(source, f"AuthorizedKeysFile names {len(names)} files; only the first {MAX_KEY_FILE_ENTRIES} "
            "were examined (OpenSSH before 7.7 refuses more than 256, later versions read them all)")
        names = names[:MAX_KEY_FILE_ENTRIES]
    templates: list[tuple[str, tuple[str | int, ...], int, int, int]] = []
    for name in names:
        expanded = _tilde(name, home_of)
        if expanded is None:
            if problems is not None:
                problems.note(source, f"AuthorizedKeysFile entry {name[:80]!r} names an unknown user; sshd "
                              "refuses to start with it")
            continue
        parts = _template(expanded)
        text = sum(len(p) for p in parts if isinstance(p, str))
        n_home, n_user = parts.count(_HOME), parts.count(_USER) + parts.count(_UID)
        if text + n_home + n_user > PATH_MAX:  # longer than PATH_MAX for every account
            if problems is not None:
                problems.note(source, f"AuthorizedKeysFile entry {name[:80]!r} gives paths longer than "
                              f"{PATH_MAX} bytes; sshd cannot open them")
            continue
        templates.append((name, parts, text, n_home, n_user))
    # Whole accounts, each with every entry; an entry costs its parts to fill in.
    room = MAX_KEY_PATHS // max(sum(max(len(t[1]), 1) for t in templates), 1)
    if len(homes) > room:
        cut(source, f"{len(homes)} accounts × {len(names)} AuthorizedKeysFile entries are more than "
            f"{MAX_KEY_PATHS} paths to build; the key files of {len(homes) - room} accounts were not "
            "examined")
    out: list[tuple[str, str, str]] = []
    for (user, home), uid in list(homes.items())[:room]:
        for name, parts, text, n_home, n_user in templates:
            # measured before it is built: a long entry times a long home is never made
            size = text + n_home * len(home) + n_user * len(user)
            path = _fill(parts, user, home, uid) if size <= PATH_MAX else ""
            if not path or len(path) > PATH_MAX:
                if problems is not None:
                    problems.note(source, f"AuthorizedKeysFile entry {name[:80]!r} gives paths longer "
                                  f"than {PATH_MAX} bytes; sshd cannot open them")
                continue
            out.append((user, home, path))
    return out


def read_authorized_keys(reader: Reader, accounts: Iterable[Account],
                         files: Iterable[str] = DEFAULT_FILES, *, problems: Problems | None = None,
                         paths: Sequence[tuple[str, str, str]] | None = None) -> tuple[AuthorizedKey, ...]:
    """Keys of every account with a home directory (and root's /root), from ``files``: sshd's
    AuthorizedKeysFile entries (default ``.ssh/authorized_keys .ssh/authorized_keys2``) with ``%h``
    and ``%u`` expanded and relative entries taken from the home directory; ``none`` names no file.

    Each file is read and parsed once, however many accounts it serves (accounts sharing a home,
    or paths leading to the same file): its keys are listed once, with every account they log in as
    (``AuthorizedKey.users``), so the work and the facts grow with the file, not with the accounts.
    A path that is not a regular file is skipped and added to ``problems`` (NOT_REGULAR), as sshd
    refuses it too; a regular file that cannot be read, or more than :data:`MAX_KEYS_TOTAL` keys in
    all, raises :class:`ReadError` (the keys are then unknown, not "none").

    ``paths``: the :func:`key_file_paths` of ``accounts`` and ``files`` when the caller has them
    already (the collector builds them once per guest); else they are built here."""
    problems = Problems() if problems is None else problems
    if paths is None:
        paths = key_file_paths(accounts, files, problems=problems)
    # file identity -> (first path, accounts it serves, in order)
    served: dict[object, tuple[str, dict[str, None]]] = {}
    for user, _home, path in paths:
        info = reader.stat(path)
        if info.exists is False:
            continue
        if info.exists is None:
            raise ReadError(path, info.error or "could not be examined")
        if info.kind != "file":
            problems.note(path, f"{info.kind}, not a regular file; sshd ignores it", ErrorKind.NOT_REGULAR)
            continue
        identity = info.file_id if info.file_id is not None else path
        served.setdefault(identity, (path, {}))[1].setdefault(user)
    found: list[AuthorizedKey] = []
    for path, users in served.values():
        text = reader.read_text(path, MAX_FILE_BYTES)
        first, *others = users
        keys = parse_authorized_keys(text, first, path)
        if others:
            also = tuple(others)
            keys = tuple(evolve(k, also_for=also) for k in keys)
        found.extend(keys)
        if len(found) > MAX_KEYS_TOTAL:
            raise ReadError(path, f"more than {MAX_KEYS_TOTAL} authorized keys in all", ErrorKind.TOO_LARGE)
    return tuple(found)
