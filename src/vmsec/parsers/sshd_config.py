"""OpenSSH server configuration, resolved offline the way sshd resolves it.

Semantics follow OpenSSH's ``servconf.c`` (checked against ``sshd -T`` of OpenSSH 9.2p1):

- a line is ``Keyword value…`` or ``Keyword=value``; keywords are case-insensitive; arguments are
  split like ``argv_split``: blanks separate, ``"…"``/``'…'`` quote, a ``#`` at the start of an
  argument ends the line;
- the first value of a keyword wins (later lines are ignored), except the keywords in
  :data:`ACCUMULATE` (each line adds) and :data:`LAST_WINS` (each line replaces);
- ``Include`` splices the files its glob patterns match (sorted, dot-files only when the pattern
  says so, relative paths under /etc/ssh) at the place it appears; an included file cannot change
  the includer's Match state; depth and file count are bounded, all the wildcards of one
  configuration share one budget of paths examined, and loops are reported;
- ``Match`` starts a conditional block that runs to the next ``Match`` or the end of its file;
  ``Match all`` matches every connection (its values override the global ones, as sshd applies
  Match values after the global pass); ``Include`` inside a Match block is conditional on it;
- keywords not set anywhere take the compiled default of the installed version
  (:mod:`vmsec.parsers.sshd_defaults`), or stay unknown when that version is not known.

sshd refuses to start on any configuration error; vmsec adds each one to the caller's
:class:`~vmsec.errors.Problems` (a :class:`~vmsec.errors.ParseError` naming ``path:line``), skips the
line, and goes on. An unreadable included file is a problem with the reader's kind, and is named in
``SshdConfig.unread`` (as is an Include directory that cannot be listed, and a file left out by a cap
or by the wildcard budget):
sshd reads it, and it could set any keyword first or hold a Match block, so the values vmsec sees
are not known to be sshd's. The main file unreadable raises (the configuration is then unknown).

Verified with the real sshd 9.2p1 where it refines or contradicts the catalogue's notes:

- ``Match all`` does not simply "end" Match blocks: lines after it are global *and* a Match block
  for every connection, so ``PasswordAuthentication no`` … ``Match all`` / ``PasswordAuthentication
  yes`` gives ``yes``, and an ``AllowUsers`` after ``Match all`` replaces (not extends) the global list;
- ``MaxStartups`` (also PerSourceMaxStartups, PerSourceNetBlockSize, IPQoS, FingerprintHash,
  StreamLocalBindMask) is last-wins, not first-wins;
- a second ``Subsystem`` with the same name is fatal, not ignored;
- ``Match User !root`` never matches anyone (a negation alone is no positive match);
- a Match line is split like ``Match User=bob Address = 10.0.0.0/8``; ``-C`` may omit fields
  (they never match), but plain ``sshd -T`` with ``Match LocalPort`` is fatal;
- Debian's 9.2p1 (deb12u10) default KexAlgorithms start with ``sntrup761x25519-sha512``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping

from msgspec import Struct, field

from vmsec.errors import ErrorKind, ParseError, Problems, ReadError
from vmsec.facts import FileKind
from vmsec.facts.guest import SshdConfig, SshdMatch
from vmsec.parsers.glob_pattern import glob_sort_key, has_magic, match_component, unescape
from vmsec.parsers.sshd_defaults import compiled_defaults, parse_version, supported_algorithms
from vmsec.parsers.sshd_pattern import match_pattern_list
from vmsec.reading import Reader

MAX_FILE_BYTES = 1024 * 1024
MAX_DEPTH = 16  # SERVCONF_MAX_DEPTH
MAX_FILES = 256
MAX_LINES = 200_000
MAX_TOTAL_BYTES = 16 * 1024 * 1024  # over all files of one configuration
MAX_UNREAD = 100  # unread files named in the fact; the rest are counted
# Directory entries listed plus paths examined by all Include patterns of one configuration: each
# level of a pattern multiplies the work by the entries of a directory (symlinks to "." make it
# endless), so one budget bounds the whole configuration, not each pattern or line.
MAX_GLOB_WORK = 20_000
MAX_GLOB_LIST = 4096  # entries of one directory listed by an Include pattern
SSHDIR = "/etc/ssh"

# Aliases -> the name sshd -T prints.
ALIASES: Mapping[str, str] = {
    "challengeresponseauthentication": "kbdinteractiveauthentication",
    "skeyauthentication": "kbdinteractiveauthentication",
    "pubkeyacceptedkeytypes": "pubkeyacceptedalgorithms",
    "hostbasedacceptedkeytypes": "hostbasedacceptedalgorithms",
    "hostdsakey": "hostkey",
    "dsaauthentication": "pubkeyauthentication",
    "keepalive": "tcpkeepalive",
}

# Keywords allowed inside Match (SSHCFG_ALL in servconf.c 9.2); every other keyword is global only.
MATCH_KEYWORDS = frozenset({
    "permitrootlogin", "loglevel", "logverbose", "hostbasedauthentication",
    "hostbasedusesnamefrompacketonly", "hostbasedacceptedalgorithms", "pubkeyauthentication",
    "pubkeyacceptedalgorithms", "pubkeyauthoptions", "kerberosauthentication",
    "gssapiauthentication", "passwordauthentication", "kbdinteractiveauthentication",
    "ignorerhosts", "x11forwarding", "x11displayoffset", "gatewayports", "x11uselocalhost",
    "permitemptypasswords",
    "rekeylimit", "allowtcpforwarding", "allowagentforwarding", "allowusers", "denyusers",
    "allowgroups", "denygroups", "maxauthtries", "maxsessions", "banner", "clientaliveinterval",
    "clientalivecountmax", "authorizedkeysfile", "acceptenv", "setenv", "permittunnel", "permittty",
    "permituserrc", "match", "permitopen", "permitlisten", "forcecommand", "chrootdirectory",
    "revokedkeys", "trustedusercakeys", "authorizedprincipalsfile", "include", "ipqos",
    "authorizedkeyscommand", "authorizedkeyscommanduser", "authorizedprincipalscommand",
    "authorizedprincipalscommanduser", "authenticationmethods", "streamlocalbindmask",
    "streamlocalbindunlink", "allowstreamlocalforwarding", "disableforwarding", "exposeauthinfo",
    "rdomain", "casignaturealgorithms", "requiredrsasize", "channeltimeout",
    "unusedconnectiontimeout", "rhostsrsaauthentication", "rsaauthentication", "authorizedkeysfile2",
})

GLOBAL_KEYWORDS = frozenset({
    "usepam", "port", "hostkey", "hostkeyagent", "pidfile", "modulifile", "logingracetime",
    "syslogfacility", "hostkeyalgorithms", "kerberosorlocalpasswd", "kerberosticketcleanup",
    "kerberosgetafstoken", "gssapicleanupcredentials", "gssapistrictacceptorcheck", "listenaddress",
    "addressfamily", "printmotd", "printlastlog", "ignoreuserknownhosts", "xauthlocation",
    "strictmodes", "permituserenvironment", "compression", "tcpkeepalive", "ciphers", "macs",
    "protocol", "subsystem", "maxstartups", "persourcemaxstartups", "persourcenetblocksize",
    "usedns", "hostcertificate", "kexalgorithms", "versionaddendum", "fingerprinthash",
    "securitykeyprovider", "persourcepenalties", "persourcepenaltyexemptlist", "sshdsessionpath",
    "sshdauthpath",
    # distribution patches: Debian (DebianBanner, GSSAPI key exchange), RHEL/Fedora (GSSAPI kex)
    "debianbanner", "gssapikeyexchange", "gssapistorecredentialsonrekey", "gssapikexalgorithms",
    "gssapienablek5users",
})
# Aliases that are global-only although the keyword they stand for is allowed in Match.
GLOBAL_ONLY_ALIASES = frozenset({"dsaauthentication", "hostdsakey", "keepalive"})
# Keywords that an older sshd rejects as "Bad configuration option" (first upstream version).
SINCE: Mapping[str, tuple[int, int]] = {
    "include": (8, 2), "pubkeyacceptedalgorithms": (8, 5), "hostbasedacceptedalgorithms": (8, 5),
    "requiredrsasize": (9, 1), "channeltimeout": (9, 2), "unusedconnectiontimeout": (9, 2),
    "persourcepenalties": (9, 8), "persourcepenaltyexemptlist": (9, 8), "sshdsessionpath": (9, 8),
}
# Keywords added by distribution patches; other distributions' sshd rejects them.
DISTRO_KEYWORDS: Mapping[str, frozenset[str]] = {
    "debian": frozenset({"debianbanner", "gssapikeyexchange", "gssapistorecredentialsonrekey",
                         "gssapikexalgorithms"}),
    "rhel": frozenset({"gssapikeyexchange", "gssapistorecredentialsonrekey", "gssapikexalgorithms",
                       "gssapienablek5users"}),
}
_DISTRO_FAMILY = {"debian": "debian", "ubuntu": "debian", "rhel": "rhel", "centos": "rhel",
                  "fedora": "rhel", "almalinux": "rhel", "rocky": "rhel", "ol": "rhel"}

# Accepted and ignored by sshd (logged as deprecated/unsupported), never an error.
IGNORED = frozenset({
    "pamauthenticationviakbdint", "serverkeybits", "keyregenerationinterval", "rhostsauthentication",
    "rhostsrsaauthentication", "rsaauthentication", "kerberostgtpassing", "afstokenpassing",
    "checkmail", "uselogin", "verifyreversemapping", "reversemappingcheck", "authorizedkeysfile2",
    "useprivilegeseparation",
})

# Each line adds its arguments (one element per sshd -T line).
ACCUMULATE = frozenset({"port", "listenaddress", "hostkey", "hostcertificate", "acceptenv",
                        "allowusers", "denyusers", "allowgroups", "denygroups", "subsystem"})
# Each line replaces the value (no "is it set yet" test in servconf.c).
LAST_WINS = frozenset({"maxstartups", "persourcemaxstartups", "persourcenetblocksize", "ipqos",
                       "streamlocalbindmask", "fingerprinthash"})
ALGORITHM_LISTS = frozenset({"ciphers", "macs", "kexalgorithms", "hostkeyalgorithms",
                             "pubkeyacceptedalgorithms", "hostbasedacceptedalgorithms",
                             "casignaturealgorithms"})

_FLAG = ("yes", "no")
_MULTISTATE: Mapping[str, Mapping[str, str]] = {
    "permitrootlogin": {"without-password": "without-password", "prohibit-password": "without-password",
                        "forced-commands-only": "forced-commands-only", "yes": "yes", "no": "no"},
    "ignorerhosts": {"yes": "yes", "no": "no", "shosts-only": "shosts-only"},
    "gatewayports": {"clientspecified": "clientspecified", "yes": "yes", "no": "no"},
    "allowtcpforwarding": {"yes": "yes", "all": "yes", "no": "no", "remote": "remote", "local": "local"},
    "allowstreamlocalforwarding": {"yes": "yes", "all": "yes", "no": "no", "remote": "remote",
                                   "local": "local"},
    "addressfamily": {"inet": "inet", "inet6": "inet6", "any": "any"},
    "compression": {"yes": "yes", "delayed": "yes", "no": "no"},
}
_FLAGS = frozenset({
    "usepam", "hostbasedauthentication", "hostbasedusesnamefrompacketonly", "pubkeyauthentication",
    "kerberosauthentication", "kerberosorlocalpasswd", "kerberosticketcleanup", "kerberosgetafstoken",
    "gssapiauthentication", "gssapicleanupcredentials", "gssapistrictacceptorcheck",
    "passwordauthentication", "kbdinteractiveauthentication", "printmotd", "printlastlog",
    "ignoreuserknownhosts", "x11forwarding", "x11uselocalhost", "permittty", "permituserrc",
    "strictmodes", "tcpkeepalive", "permitemptypasswords", "usedns", "allowagentforwarding",
    "disableforwarding", "streamlocalbindunlink", "exposeauthinfo", "debianbanner",
    "gssapikeyexchange", "gssapistorecredentialsonrekey",
})
_TIMES = frozenset({"logingracetime", "clientaliveinterval"})
# auth2.c authmethods[] (Debian builds GSSAPI in): the names AuthenticationMethods may use.
_AUTH_METHODS = frozenset({"none", "publickey", "gssapi-with-mic", "password", "keyboard-interactive",
                           "hostbased"})
_INTS = frozenset({"maxauthtries", "maxsessions", "clientalivecountmax", "x11displayoffset",
                   "requiredrsasize"})
_LOG_LEVELS = {"QUIET": "QUIET", "FATAL": "FATAL", "ERROR": "ERROR", "INFO": "INFO",
               "VERBOSE": "VERBOSE", "DEBUG": "DEBUG", "DEBUG1": "DEBUG", "DEBUG2": "DEBUG2",
               "DEBUG3": "DEBUG3"}
_MATCH_CRITERIA = frozenset({"user", "group", "host", "address", "localaddress", "localport", "rdomain"})
# strtol()/strtoll() in base 10: C blanks, an optional sign, ASCII digits (\d also takes '٣').
_STRTOL = re.compile(r"[ \t\n\v\f\r]*([+-]?)([0-9]+)")
_TIME_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_INT_MAX = 2**31 - 1


def _strtol(text: str, pos: int = 0) -> tuple[int, int] | None:
    """(value, end) of the number strtol() reads at ``pos``, None when it reads none. A value past
    the range comes back as 2^63 (strtol saturates; every caller then refuses it)."""
    match = _STRTOL.match(text, pos)
    if match is None:
        return None
    digits = match.group(2).lstrip("0") or "0"
    value = int(digits) if len(digits) <= 18 else 2**63
    return (-value if match.group(1) == "-" else value), match.end()


def _strtonum(text: str, low: int, high: int) -> int | None:
    """OpenBSD strtonum(): the whole text one number within [low, high], else None."""
    read = _strtol(text)
    if read is None or read[1] != len(text) or not low <= read[0] <= high:
        return None
    return read[0]


class _Invalid(ValueError):
    """One configuration line sshd would reject."""


class _Scope(Struct):
    """Values set in one scope (the global pass, or one Match block), with origins."""

    single: dict[str, tuple[str, ...]] = field(default_factory=dict)
    lists: dict[str, list[str]] = field(default_factory=dict)  # ACCUMULATE keywords (no O(n²) joins)
    origins: dict[str, str] = field(default_factory=dict)

    def set(self, keyword: str, value: tuple[str, ...], origin: str) -> None:
        if keyword in ACCUMULATE:
            self.lists.setdefault(keyword, []).extend(value)
            self.origins.setdefault(keyword, origin)
        elif keyword in LAST_WINS or keyword not in self.single:
            self.single[keyword] = value
            self.origins[keyword] = origin

    @property
    def values(self) -> dict[str, tuple[str, ...]]:
        return {**self.single, **{k: tuple(v) for k, v in self.lists.items()}}


class _State(Struct):
    reader: Reader
    version: tuple[int, int] | None = None
    distro: str | None = None
    supported: Mapping[str, frozenset[str]] = field(default_factory=dict)
    problems: Problems = field(default_factory=Problems)
    files: list[str] = field(default_factory=list)
    lines: int = 0
    total_bytes: int = 0
    glob_scope: _Scope = field(default_factory=_Scope)
    blocks: list[tuple[tuple[tuple[str, str], ...], _Scope, str]] = field(default_factory=list)
    subsystems: set[str] = field(default_factory=set)
    glob_work: int = 0  # against MAX_GLOB_WORK
    globbed: dict[str, list[str]] = field(default_factory=dict)  # Include pattern -> the files it matched
    listed: dict[str, None] = field(default_factory=dict)  # directories an Include pattern lists, in order
    unread: list[str] = field(default_factory=list)  # "path: reason" of inputs sshd reads and we could not
    unread_more: int = 0

    def error(self, error: ReadError) -> None:
        self.problems.append(error)

    def skipped(self, error: ReadError) -> None:
        """An input sshd would read that was not read: recorded, and the configuration is incomplete."""
        self.error(error)
        if len(self.unread) < MAX_UNREAD:
            self.unread.append(f"{error.source}: {error.reason}")
        else:
            self.unread_more += 1

    @property
    def unread_inputs(self) -> tuple[str, ...]:
        more = (f"… and {self.unread_more} more inputs not read",) if self.unread_more else ()
        return (*self.unread, *more)


# --- tokenising ----------------------------------------------------------------------------------

_WHITESPACE = " \t\r\n"


def _strdelim(text: str) -> tuple[str | None, str | None]:
    """OpenSSH ``strdelim()`` (misc.c, with ``=`` as a delimiter): (token, rest). The token ends at
    whitespace, ``=`` or a quote; a quote opens a quoted token (``(None, None)`` when it never closes);
    one ``=`` and the blanks around it are skipped. ``rest`` is None when nothing follows."""
    end = next((i for i, c in enumerate(text) if c in ' \t\r\n"='), -1)
    if end < 0:
        return text, None
    if text[end] == '"':
        unquoted = text[:end] + text[end + 1:]
        close = unquoted.find('"', end)
        if close < 0:
            return None, None
        return unquoted[:close], unquoted[close + 1:].lstrip(_WHITESPACE)
    rest = text[end + 1:].lstrip(_WHITESPACE)
    if text[end] != "=" and rest.startswith("="):
        rest = rest[1:].lstrip(_WHITESPACE)
    return text[:end], rest


def split_keyword(line: str) -> tuple[str, str] | None:
    """(keyword, rest) as sshd's ``process_server_config_line`` takes them with ``strdelim``; None for
    lines sshd passes over (blank, comment, an unclosed quote in the keyword). An empty first token
    (a leading blank, ``=`` or ``""``) gives way to the next: ``"PermitRootLogin" yes`` and
    ``=PermitRootLogin yes`` are settings."""
    text = line.lstrip(" \t\r").rstrip(" \t\r\n\f")
    if not text:
        return None
    keyword, rest = _strdelim(text)
    if keyword == "" and rest is not None:
        keyword, rest = _strdelim(rest)
    if not keyword or keyword.startswith("#"):
        return None
    return keyword, rest or ""


def split_args(text: str) -> tuple[str, ...]:
    """Arguments as OpenSSH's ``argv_split(…, terminate_on_comment=1)`` splits them."""
    args: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if text[i] in " \t":
            i += 1
            continue
        if text[i] == "#":
            break
        quote = ""
        arg: list[str] = []
        while i < n:
            ch = text[i]
            if ch == "\\" and i + 1 < n and (text[i + 1] in "'\"\\" or (not quote and text[i + 1] == " ")):
                arg.append(text[i + 1])
                i += 2
                continue
            if not quote and ch in " \t":
                break
            if not quote and ch in "\"'":
                quote = ch
            elif quote and ch == quote:
                quote = ""
            else:
                arg.append(ch)
            i += 1
        if quote:
            raise _Invalid("invalid quotes")
        args.append("".join(arg))
    return tuple(args)


# --- values ----------------------------------------------------------------------------------------

def _convtime(text: str) -> int:
    """misc.c convtime(): numbers (strtol, each with its own blanks and sign, none negative), each
    followed by a unit or the end; the total fits an int."""
    if not text:
        raise _Invalid("missing time value")
    total, pos = 0, 0
    while pos < len(text):
        read = _strtol(text, pos)
        if read is None or read[0] < 0:
            raise _Invalid(f"invalid time value {text!r}")
        secs, pos = read
        unit = text[pos:pos + 1]
        if unit and unit.lower() not in "smhdw":
            raise _Invalid(f"invalid time value {text!r}")
        pos += len(unit)
        multiplier = _TIME_UNITS[unit.lower()]
        if secs > _INT_MAX // multiplier or total > _INT_MAX - secs * multiplier:
            raise _Invalid(f"time value {text!r} too large")
        total += secs * multiplier
    return total


def _port(text: str) -> int:
    """misc.c a2port(): strtonum(0, 65535), and a port of 0 is refused. (A service name, which sshd
    looks up in /etc/services, is refused here.)"""
    port = _strtonum(text, 0, 65535)
    if not port:
        raise _Invalid(f"bad port number {text!r}")
    return port


def _one(keyword: str, args: tuple[str, ...]) -> str:
    if not args or args[0] == "":
        raise _Invalid(f"{keyword} missing argument")
    if len(args) > 1:
        raise _Invalid(f"keyword {keyword} extra arguments at end of line")
    return args[0]


def normalise(keyword: str, args: tuple[str, ...]) -> tuple[str, ...]:
    """The value of one line as ``sshd -T`` would print it; raises :class:`_Invalid`."""
    if keyword in _FLAGS:
        value = _one(keyword, args).lower()
        if value not in _FLAG:
            raise _Invalid(f"unsupported option {args[0]!r}")
        return (value,)
    if keyword in _MULTISTATE:
        table = _MULTISTATE[keyword]
        value = _one(keyword, args).lower()
        if value not in table:
            raise _Invalid(f"unsupported option {args[0]!r}")
        return (table[value],)
    if keyword in _TIMES:
        return (str(_convtime(_one(keyword, args))),)
    if keyword in _INTS:
        value = _one(keyword, args)
        number = _strtonum(value, 0, _INT_MAX)  # atoi_err()
        if number is None:
            raise _Invalid(f"{keyword} integer value {value!r} invalid")
        return (str(number),)
    if keyword == "loglevel":
        value = _one(keyword, args).upper()
        if value not in _LOG_LEVELS:
            raise _Invalid(f"unsupported log level {args[0]!r}")
        return (_LOG_LEVELS[value],)
    if keyword == "syslogfacility":
        return (_one(keyword, args).upper(),)
    if keyword == "port":
        return (str(_port(_one(keyword, args))),)
    if keyword == "banner" or keyword in ("chrootdirectory", "trustedusercakeys", "revokedkeys"):
        value = _one(keyword, args)
        return ("none",) if value.lower() == "none" else (value,)
    if keyword in ALGORITHM_LISTS:
        return (_one(keyword, args),)  # resolved against the default list later
    if keyword == "permituserenvironment":
        return (_one(keyword, args),)  # "yes"/"no" are case-sensitive; anything else is a pattern list
    if keyword == "maxstartups":
        value = _one(keyword, args)
        parts = value.split(":")
        if not all(p.isdigit() for p in parts) or len(parts) not in (1, 3):
            raise _Invalid(f"invalid MaxStartups spec {value!r}")
        if len(parts) == 1:
            return (f"{parts[0]}:30:{parts[0]}",)
        begin, rate, full = (int(p) for p in parts)
        if begin > full or not 1 <= rate <= 100:
            raise _Invalid(f"invalid MaxStartups spec {value!r}")
        return (value,)
    if keyword == "subsystem":
        if len(args) < 2:
            raise _Invalid("missing subsystem command")
        return (" ".join(args),)
    if keyword == "listenaddress":
        if not args or not args[0]:
            raise _Invalid("missing address")
        if len(args) not in (1, 3) or (len(args) == 3 and args[1] != "rdomain"):
            raise _Invalid("bad ListenAddress syntax")
        return (" ".join(args),)
    if keyword in ("forcecommand", "versionaddendum", "authorizedkeyscommand",
                   "authorizedprincipalscommand"):
        if not args:
            raise _Invalid(f"{keyword} missing argument")
        return (" ".join(args),)
    if keyword == "acceptenv":
        if any(not a or "=" in a for a in args):
            raise _Invalid("invalid environment name")
        return args
    if keyword in ("allowusers", "denyusers", "allowgroups", "denygroups"):
        if any(not a for a in args):
            raise _Invalid(f"empty {keyword} pattern")
        return args
    if keyword in ("hostkey", "hostcertificate", "pidfile", "xauthlocation", "modulifile"):
        return (_one(keyword, args),)
    if keyword == "authenticationmethods":
        if not args:
            raise _Invalid("no AuthenticationMethods specified")
        if "any" in args and len(args) > 1:
            raise _Invalid('"any" must appear alone in AuthenticationMethods')
        for arg in args:
            # auth2_methods_valid(): each method (before a ":submethod") one sshd implements
            if arg != "any" and any(m.split(":", 1)[0] not in _AUTH_METHODS for m in arg.split(",")):
                raise _Invalid(f"invalid AuthenticationMethods method list {arg!r}")
        return args
    if not args:
        raise _Invalid(f"{keyword} missing argument")
    return args


def resolve_algorithms(spec: str, default: tuple[str, ...] | None) -> tuple[str, ...] | None:
    """``Ciphers``/``MACs``/``KexAlgorithms``… spec against the version's default list (kex_assemble_names).

    ``+`` appends, ``-`` removes (patterns), ``^`` prepends; a plain list replaces the default.
    Returns None when the spec needs the default and the default is unknown.
    """
    if spec[:1] != "-" and ("*" in spec or "?" in spec):
        return None  # sshd expands the pattern against every algorithm it implements: not recorded
    if spec[:1] in "+-^":
        if default is None:
            return None
        names = [n for n in spec[1:].split(",") if n]
        if spec[0] == "+":
            combined = list(default) + names
        elif spec[0] == "^":
            combined = names + list(default)
        else:
            combined = [d for d in default if not _pattern_list(d, names)]
    else:
        combined = [n for n in spec.split(",") if n]
    out: list[str] = []
    for name in combined:
        if name not in out:
            out.append(name)
    return tuple(out)


def _pattern_list(name: str, patterns: list[str]) -> bool:
    """match_filter_denylist(): does the list match ``name`` (a negated match keeps it)?"""
    return match_pattern_list(name, ",".join(patterns)) == 1


# --- Match lines -------------------------------------------------------------------------------------

def _check_addr_list(arg: str) -> None:
    """Reject what ``addr_match_list`` rejects (-2): an empty entry, a bad mask, host bits set."""
    for entry in arg.split(","):
        entry = entry[1:] if entry.startswith("!") else entry
        if not entry:
            raise _Invalid(f"invalid Match address list {arg!r}")
        address, slash, mask = entry.partition("/")
        if slash and (not mask.isdigit() or int(mask) > 128):
            continue  # not CIDR: sshd falls back to a wildcard match
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            continue
        if slash:
            try:
                ipaddress.ip_network(f"{ip}/{mask}", strict=True)
            except ValueError as exc:
                raise _Invalid(f"invalid Match address {entry!r}: {exc}") from exc


def strdelim_tokens(text: str) -> tuple[str, ...]:
    """The words of a Match line as servconf.c ``match_cfg_line`` takes them, one ``strdelim`` at a
    time: a criterion word that is empty, unquotable or a ``#`` comment ends the line; the word after
    a criterion is its pattern, whatever it is (an empty or comment one is then refused)."""
    out: list[str] = []
    rest: str | None = text.strip(" \t\r\n")
    while rest:
        attrib, rest = _strdelim(rest)
        if not attrib or attrib.startswith("#"):
            break
        out.append(attrib)
        if rest is None:
            break
        if attrib.lower() == "all":
            continue
        arg, rest = _strdelim(rest)
        if arg is None:
            raise _Invalid("invalid quotes")
        out.append(arg)
    return tuple(out)


def parse_match(args: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """Criteria of one ``Match`` line, as (lower-case criterion, pattern) pairs; raises _Invalid."""
    if not args:
        raise _Invalid("one or more attributes required for Match")
    if args[0].lower() == "all":
        if len(args) > 1:
            raise _Invalid("'all' cannot be combined with other Match attributes")
        return (("all", ""),)
    if len(args) % 2:
        raise _Invalid(f"missing Match criteria for {args[-1]}")
    out: list[tuple[str, str]] = []
    for name, arg in zip(args[::2], args[1::2], strict=True):
        if not arg or arg.startswith("#"):
            raise _Invalid(f"missing Match criteria for {name}")
        lower = name.lower()
        if lower == "all":
            raise _Invalid("'all' cannot be combined with other Match attributes")
        if lower not in _MATCH_CRITERIA:
            raise _Invalid(f"unsupported Match attribute {name}")
        if lower in ("address", "localaddress"):
            _check_addr_list(arg)
        if lower == "localport":
            arg = str(_port(arg))  # a2port(): "+22" is port 22
        out.append((lower, arg))
    return tuple(out)


# --- files and includes ---------------------------------------------------------------------------

def _glob(state: _State, pattern: str, origin: str) -> list[str]:
    """glob(3) with flags 0 over the reader: wildcards in any component, no hidden files unless
    the component starts with a dot, sorted; a pattern without wildcards matches if it exists.

    The work is bounded per configuration, not per pattern: each directory entry listed and each path
    examined counts against one budget (:data:`MAX_GLOB_WORK`), a level stops once it holds more than
    :data:`MAX_FILES` paths, and a pattern given again is not expanded again. What a bound leaves out
    is recorded as unread (``origin``, the Include line): sshd would read the files it hides."""
    cached = state.globbed.get(pattern)
    if cached is not None:
        return cached
    reader = state.reader
    parts = [p for p in pattern.split("/") if p]
    paths = [""]
    spent = over = False
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        nxt: list[str] = []
        for base in paths:
            if spent or len(nxt) > MAX_FILES:
                break
            if not has_magic(part):
                nxt.append(f"{base}/{unescape(part)}")
                continue
            room = MAX_GLOB_WORK - state.glob_work
            limit = min(MAX_GLOB_LIST, room)
            if limit <= 0:
                spent = True
                break
            state.listed.setdefault(base or "/")  # a file added here later is read: who may add one matters
            try:
                names = reader.listdir(base or "/", limit=limit)
            except ReadError as exc:
                state.glob_work += 1 + (limit if exc.kind is ErrorKind.TOO_LARGE else 0)
                if exc.kind is ErrorKind.TOO_LARGE and limit < MAX_GLOB_LIST:
                    spent = True  # the directory is larger than what is left of the budget
                elif not exc.absent:  # a directory that cannot be listed hides the files it holds
                    state.skipped(ReadError(base or "/", f"{exc.reason} (Include {pattern})", exc.kind))
                continue
            state.glob_work += 1 + len(names)
            for name in names:
                if not match_component(name, part):  # glibc's fnmatch, leading dots included
                    continue
                candidate = f"{base}/{name}"
                if not last:
                    if state.glob_work >= MAX_GLOB_WORK:
                        spent = True
                        break
                    state.glob_work += 1
                    if reader.stat(candidate).kind != FileKind.DIRECTORY:
                        continue
                nxt.append(candidate)
                if len(nxt) > MAX_FILES:  # more than can be read: the rest of the level is not listed
                    break
        if len(nxt) > MAX_FILES:
            over = True
            nxt = nxt[:MAX_FILES + 1]  # one more than is read, so that the file cap is recorded too
        if spent:
            paths = nxt if last else []  # directories are no files: nothing below them was matched
            break
        paths = nxt
    state.glob_work += len(paths)
    found = sorted((p for p in paths if reader.stat(p, follow=False).exists), key=glob_sort_key)
    if spent or over:
        why = (f"was not expanded in full (Include patterns examined more than {MAX_GLOB_WORK} paths)"
               if spent else f"matches more than {MAX_FILES} paths")
        state.skipped(ReadError(origin, f"Include {pattern} {why}; the files beyond were not read",
                                ErrorKind.TOO_LARGE))
    state.globbed[pattern] = found
    return found


def _load(state: _State, path: str) -> list[str] | None:
    if len(state.files) >= MAX_FILES:
        state.skipped(ReadError(path, f"not read, more than {MAX_FILES} configuration files",
                                ErrorKind.TOO_LARGE))
        return None
    info = state.reader.stat(path)
    if info.exists and info.kind == FileKind.DIRECTORY:
        return []  # sshd reads a directory as an empty file
    try:
        data = state.reader.read_bytes(path, limit=MAX_FILE_BYTES)
    except ReadError as exc:
        if not state.files:
            raise  # the main file: the configuration is unknown
        state.skipped(exc)
        return None
    state.total_bytes += len(data)
    if state.total_bytes > MAX_TOTAL_BYTES:
        state.skipped(ReadError(path, f"not read, configuration files exceed {MAX_TOTAL_BYTES} bytes "
                                "in total", ErrorKind.TOO_LARGE))
        return None
    state.files.append(path)
    if b"\0" in data:
        # servconf.c load_server_config(): each line is copied up to its first NUL, its newline lost
        # with the rest, so the next line joins it ("# note\0\nPermitRootLogin no" is one comment).
        # Each line loses its leading blanks first (strspn(line, " \t\r")), the joined one too.
        lines = [line.lstrip(b" \t\r") for line in data.split(b"\n")]
        data = b"".join(line.split(b"\0", 1)[0] if b"\0" in line else line + b"\n" for line in lines[:-1])
        data += lines[-1].split(b"\0", 1)[0]
    return data.decode("utf-8", "replace").split("\n")


def _parse_file(state: _State, path: str, chain: tuple[tuple[str, str], ...],
                stack: tuple[str, ...]) -> None:
    if state.lines > MAX_LINES:
        return
    lines = _load(state, path)
    if lines is None:
        return
    file_match: tuple[tuple[str, str], ...] | None = None  # this file's current Match block
    for number, raw in enumerate(lines, start=1):
        state.lines += 1
        if state.lines > MAX_LINES:
            state.skipped(ReadError(f"{path}:{number}", f"stopped, more than {MAX_LINES} configuration "
                                    "lines", ErrorKind.TOO_LARGE))
            return
        origin = f"{path}:{number}"
        if "\0" in raw:
            continue
        try:
            split = split_keyword(raw)
            if split is None:
                continue
            word, rest = split
            if not rest:
                raise _Invalid(f'no argument after keyword "{word}"')
            args = split_args(rest)
            keyword = ALIASES.get(word.lower(), word.lower())
            in_match = bool(chain) or file_match is not None
            active_chain = chain + (file_match or ())
            if keyword == "match":
                file_match = parse_match(strdelim_tokens(rest))
                state.blocks.append((_flatten(chain + file_match), _Scope(), origin))
                continue
            if keyword == "include":
                if not _known(state, keyword):
                    raise _Invalid(f"Bad configuration option: {word} (OpenSSH < 8.2)")
                if not args or any(not a for a in args):
                    raise _Invalid("Include missing filename argument")
                _include(state, path, number, args, active_chain, stack)
                continue
            always = all(name == "all" for name, _ in active_chain)
            match_ok = keyword in MATCH_KEYWORDS and word.lower() not in GLOBAL_ONLY_ALIASES
            if keyword in IGNORED:
                if in_match and not always and not match_ok:
                    raise _Invalid(f"Directive '{word}' is not allowed within a Match block")
                continue
            if not _known(state, keyword):
                raise _Invalid(f"Bad configuration option: {word}")
            if in_match and not match_ok and not always:
                raise _Invalid(f"Directive '{word}' is not allowed within a Match block")
            value = normalise(keyword, args)
            if keyword in ALGORITHM_LISTS:
                _check_algorithms(state, keyword, word, value[0])
            if keyword == "subsystem" and always:
                name = args[0]
                if name in state.subsystems:
                    raise _Invalid(f"Subsystem '{name}' already defined")
                state.subsystems.add(name)
            if always:
                state.glob_scope.set(keyword, value, origin)
            if in_match and keyword in MATCH_KEYWORDS:
                _block_scope(state, _flatten(active_chain), origin).set(keyword, value, origin)
        except _Invalid as exc:
            state.error(ParseError(path, str(exc), number))


_SSH2_LISTS = frozenset({"ciphers", "macs", "kexalgorithms"})


def _check_algorithms(state: _State, keyword: str, word: str, spec: str) -> None:
    """Ciphers/MACs/KexAlgorithms take no wildcards except after "-", and only names the server
    implements (checked where the version's list is recorded)."""
    if keyword not in _SSH2_LISTS or spec.startswith("-"):
        return
    body = spec[1:] if spec[:1] in "+^" else spec
    if not body:
        raise _Invalid(f"Bad {word} spec {spec!r} (no name)")
    if body == spec and not any(body.split(",")):  # kex_assemble_names(): an empty list is an error
        raise _Invalid(f"Bad {word} spec {spec!r} (no name)")
    # ciphers_valid(), mac_valid() and kex_names_valid() check names up to the first empty one only.
    names = body.split(",")
    names = names[:names.index("")] if "" in names else names
    supported = state.supported.get(keyword)
    bad = [n for n in names if "*" in n or "?" in n or (supported is not None and n not in supported)]
    if bad:
        raise _Invalid(f"Bad {word} spec {spec!r} ({', '.join(repr(b) for b in bad)})")


def _known(state: _State, keyword: str) -> bool:
    """Whether the installed sshd knows the keyword (unknown version/distro: any we know of)."""
    if keyword not in MATCH_KEYWORDS and keyword not in GLOBAL_KEYWORDS:
        return False
    since = SINCE.get(keyword)
    if since is not None and state.version is not None and state.version < since:
        return False
    patched = {k for ks in DISTRO_KEYWORDS.values() for k in ks}
    if keyword in patched and state.distro is not None:
        family = _DISTRO_FAMILY.get(state.distro)
        return family is None or keyword in DISTRO_KEYWORDS.get(family, frozenset())
    return True


def _flatten(chain: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    """Conjunction of nested Match lines; "all" is neutral unless it is alone."""
    real = tuple(c for c in chain if c[0] != "all")
    return real or (("all", ""),)


def _block_scope(state: _State, criteria: tuple[tuple[str, str], ...], origin: str) -> _Scope:
    """The scope a line inside a Match block writes to: the latest block when it has the same
    criteria (lines in textual order), else a continuation block (after an Include returned, or
    for an included file's lines before its own first Match)."""
    if state.blocks and state.blocks[-1][0] == criteria:
        return state.blocks[-1][1]
    scope = _Scope()
    state.blocks.append((criteria, scope, origin))
    return scope


def _include(state: _State, path: str, number: int, args: tuple[str, ...],
             chain: tuple[tuple[str, str], ...], stack: tuple[str, ...]) -> None:
    for arg in args:
        pattern = arg if arg.startswith(("/", "~")) else f"{SSHDIR}/{arg}"
        if len(stack) >= MAX_DEPTH:
            state.error(ReadError(f"{path}:{number}",
                        f"too many recursive configuration includes ({pattern})",
                                  ErrorKind.LOOP))
            continue
        for found in _glob(state, pattern, f"{path}:{number}"):
            if found in stack:
                state.error(ReadError(f"{path}:{number}", f"Include loop: {found} includes itself "
                                      "(sshd fails with 'Too many recursive configuration includes')",
                                      ErrorKind.LOOP))
                continue
            _parse_file(state, found, chain, (*stack, found))


# --- resolution -----------------------------------------------------------------------------------

def _listen_addresses(values: tuple[str, ...], ports: tuple[str, ...], family: str) -> tuple[str, ...]:
    out: list[str] = []
    for entry in values:
        spec, _, rdomain = entry.partition(" rdomain ")
        suffix = f" rdomain {rdomain}" if rdomain else ""
        host, port = spec, ""
        if spec.startswith("["):
            host, _, tail = spec[1:].partition("]")
            port = tail[1:] if tail.startswith(":") else ""
        elif spec.count(":") == 1:
            host, port = spec.split(":")
        for p in ((port,) if port else ports):
            try:
                ip = ipaddress.ip_address(host)
            except ValueError:
                out.append(f"{host}:{p}{suffix}")  # a name: sshd resolves it at start-up
                continue
            out.append(f"[{ip}]:{p}{suffix}" if ip.version == 6 else f"{ip}:{p}{suffix}")
    if not values:
        for p in ports:
            if family in ("any", "inet6"):
                out.append(f"[::]:{p}")
            if family in ("any", "inet"):
                out.append(f"0.0.0.0:{p}")
    return tuple(out)


def _resolve_algos(scope: dict[str, tuple[str, ...]], defaults: Mapping[str, tuple[str, ...]]) -> None:
    for keyword in ALGORITHM_LISTS:
        if keyword in scope:
            resolved = resolve_algorithms(scope[keyword][0], defaults.get(keyword))
            if resolved is None:
                del scope[keyword]
            else:
                scope[keyword] = resolved


def read_sshd_config(reader: Reader, *, version: str | None, distro: str | None = None,
                     path: str = "/etc/ssh/sshd_config", problems: Problems | None = None) -> SshdConfig:
    """The effective sshd configuration of a target, read through ``reader``.

    ``version`` is the installed OpenSSH version (from the package database) and selects the
    compiled defaults; ``distro`` is the os-release id (for distribution patches). Raises
    :class:`ReadError` when the main file cannot be read (the configuration is then unknown, not
    the compiled defaults); problems in included files and lines are added to ``problems``.
    """
    state = _State(reader=reader, version=parse_version(version), distro=distro,
                   supported=supported_algorithms(version),
                   problems=Problems() if problems is None else problems)
    _parse_file(state, path, (), (path,))
    if not state.files:  # a directory: sshd reads it as an empty file, but it is no configuration
        raise ReadError(path, "a directory, not a configuration file", ErrorKind.NOT_REGULAR)
    defaults = compiled_defaults(version, distro)
    origin_default = f"default (OpenSSH {version})"

    global_values = state.glob_scope.values
    settings = dict(global_values)
    origins = dict(state.glob_scope.origins)
    _resolve_algos(settings, defaults)
    for keyword, value in defaults.items():
        if keyword not in global_values and keyword != "listenaddress":
            settings[keyword] = value
            origins[keyword] = origin_default
    if "port" in settings:
        family = settings.get("addressfamily", ("any",))[0]
        configured = global_values.get("listenaddress", ())
        if configured or "listenaddress" in defaults:
            settings["listenaddress"] = _listen_addresses(configured, settings["port"], family)
            origins["listenaddress"] = state.glob_scope.origins.get("listenaddress", origin_default)

    matches: list[SshdMatch] = []
    for criteria, scope, origin in state.blocks:
        values = dict(scope.values)
        _resolve_algos(values, defaults)
        matches.append(SshdMatch(criteria=criteria, settings=values, origin=origin))
    config = SshdConfig(version=version, settings=settings, origins=origins, matches=tuple(matches),
                        files=tuple(state.files), unread=state.unread_inputs,
                        include_dirs=tuple(state.listed))
    # "Match all" blocks apply to every connection, after the global pass: fold them in.
    always = [m for m in matches if m.criteria == (("all", ""),)]
    if always:
        effective = dict(config.for_connection(None))
        for keyword, value in effective.items():
            if settings.get(keyword) != value:
                origins[keyword] = next((m.origin for m in always if keyword in m.settings),
                                        origins.get(keyword, origin_default))
        config = SshdConfig(version=version, settings=effective, origins=origins,
                            matches=tuple(matches), files=tuple(state.files), unread=state.unread_inputs,
                            include_dirs=tuple(state.listed))
    return config
