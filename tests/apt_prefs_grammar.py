"""A grammar of APT preference files for the differential test against apt (tests/parsers/test_aptprefs.py):
realistic pins (every Package, Pin and Pin-Priority form apt_preferences(5) and apt 2.6 accept) mixed
with hostile syntax (comments, CRs, continuation lines, lines with no colon, duplicate fields, odd
file names). Written by a review helper for the eighth pass of issue 8; deterministic per seed."""
from __future__ import annotations

import random

PKGS = ["*", "*", "*", "foo", "bar", "baz", "lib32", "dpkg", "foo bar", "bar baz lib32", "ba*", "b?r",
        "[fb]oo", "[!f]oo", "src:src-baz", "src:foo", "src:ba*", "src:*", "lib32:i386", "lib32:amd64",
        "foo:amd64", "foo:i386", "lib32:any", "foo:any", "foo:", "baz:all", "baz:amd64", "lib32:linux-any",
        "/fo+/", "/^ba/", "/", "FOO", "Foo", "*:i386", "nonexistent", "foo nonexistent", "* foo",
        "src-baz", "lib*", "l?b32:i386", "*o*", "src:src-*", "foo\tbar", "f*:amd64", "\\foo"]
A = ["stable", "stable-security", "*-security", "now", "oldstable", "Stable-Security", "/security/",
     "st*", "*", "stable-sec*", "/^stable$/", "STABLE", "stable security", "n?w"]
N = ["bookworm", "bookworm-security", "Bookworm-Security", "*security*", "bullseye", "/^bookworm$/",
     "book*", "*", "bookworm*", "[b]ookworm-security"]
ORIGIN_NAMES = ["Debian", "debian", "Deb*", "Ubuntu", "/Deb/", "*", "Debian Security"]
L = ["Debian", "Debian-Security", "*Security", "/sec/", "debian-security", "*", "Debian*"]
V = ["12", "12*", "12.8", "12.*", "1*", "11", "*", "/^12$/", "12.8*", "1", "12.9"]
C = ["main", "contrib", "m*", "*", "Main"]
B = ["amd64", "i386", "all", "*", "amd*"]
SIMPLE = ["bookworm", "bookworm-security", "stable-security", "stable", "12", "12*", "12.8", "*", "now",
          "*-security", "/security/", "", "x=y", "v=*", "a=", "Bookworm-Security", "1*", "11", "=",
          "a=now", "now*", "bookworm security", "a = stable-security", "A=stable-security"]
ORIGINS = ["security.debian.org", '"security.debian.org"', "deb.debian.org", "*.debian.org", "security.*",
           "", '""', '"security.debian.org', "/security/", "SECURITY.debian.org",
           "http://security.debian.org", "security.debian.org/debian-security", "*", '"*"', "/", "s*"]
VERSIONS = ["1.0-1", "1.0*", "1.0-1+deb12u1", "*", "2.0*", "/deb12u/", "3.0-1", "", "1.0-1*", "4.0-1",
            "2.0-1+deb12u1", "*deb12u*", "1.0-1 ", "1.0-1+DEB12U1", "2*", "?.0-1", "/^1\\.0-1$/"]
PRIO = ["-1", "1", "100", "99", "101", "500", "499", "501", "990", "1000", "1001", "-32768", "32767",
        "never", "never", "Never", "0", "junk", "10x", "+5", " -1", "99999", "-40000", "0x10", "",
        "1e3", "600  ", "2147483648", "9999999999999999999", "-0", "+600", "50", "-10", "32768",
        "-32769", "1 2", "never x"]

FIELD_CASE = {"Package": ["Package", "package", "PACKAGE", "PaCkAgE", "Package "],
              "Pin": ["Pin", "pin", "PIN", "Pin "],
              "Pin-Priority": ["Pin-Priority", "pin-priority", "PIN-PRIORITY", "Pin-priority",
                               "Pin-Priority "]}
KINDS = ["release", "release", "release", "origin", "origin", "version", "Release", "RELEASE", "Origin",
         "VERSION", "bogus", "releases", ""]


def release_data(r: random.Random) -> str:
    if r.random() < 0.3:
        return r.choice(SIMPLE)
    frags = []
    for _ in range(r.choice([1, 1, 1, 2, 2, 3, 4])):
        k = r.choice("aaannnoollvvcb")
        val = r.choice({"a": A, "n": N, "o": ORIGIN_NAMES, "l": L, "v": V, "c": C, "b": B}[k])
        if r.random() < 0.1:
            k = k.upper()
        if r.random() < 0.05:
            val = ""
        frags.append(f"{k}={val}")
    if r.random() < 0.05:
        frags.append(r.choice(["x=1", "zz", "", "a", "origin=Debian"]))
    sep = r.choice([",", ",", ", ", " ,", " , ", ",,", ",\t", " "])
    s = sep.join(frags)
    if r.random() < 0.05:
        s = "," + s
    if r.random() < 0.05:
        s = s + ","
    return s


def pin_value(r: random.Random) -> str:
    kind = r.choice(KINDS)
    low = kind.lower()
    if low.startswith("release"):
        data = release_data(r)
    elif low == "origin":
        data = r.choice(ORIGINS)
    elif low == "version":
        data = r.choice(VERSIONS)
    else:
        data = r.choice(["x", "", "security.debian.org"])
    sp = r.choice([" ", " ", " ", "  ", "\t", "", "\n "])
    return f"{kind}{sp}{data}"


def prio(r: random.Random) -> str:
    if r.random() < 0.15:
        return str(r.randint(-32768, 32767))
    return r.choice(PRIO)


def record(r: random.Random, generic_bias: float) -> list[str]:
    pkg = "*" if r.random() < generic_bias else r.choice(PKGS)
    fields = [("Package", pkg), ("Pin", pin_value(r)), ("Pin-Priority", prio(r))]
    if r.random() < 0.3:
        fields.insert(r.randint(0, 3), ("Explanation", r.choice(["hold", "", "a: b", "x\n y"])))
    if r.random() < 0.06:
        del fields[r.randrange(len(fields))]
    if r.random() < 0.06:
        fields.insert(r.randint(0, len(fields)), r.choice(fields))  # duplicate
    if r.random() < 0.04:
        r.shuffle(fields)
    lines = []
    for k, v in fields:
        name = r.choice(FIELD_CASE.get(k, [k])) if r.random() < 0.25 else k
        colon = r.choice([": ", ": ", ": ", ":", ":\t", " : ", ":  "])
        if r.random() < 0.05 and v:
            colon = ":\n "  # value starts on a continuation line
        if r.random() < 0.04 and " " in v:
            v = v.replace(" ", "\n ", 1)  # a continuation line
        line = f"{name}{colon}{v}"
        if r.random() < 0.03:
            line += r.choice(["  ", "\t", " # trailing"])
        lines.append(line)
    # hostile extras between fields
    for _ in range(r.choice([0, 0, 0, 1, 2])):
        extra = r.choice(["# comment", "#Package: *", "garbage", " continuation", "\t", " ", "   ",
                          "Pin-Priority: 5", "X-Foo: bar", "#", " #not a comment", ":", "x:"])
        lines.insert(r.randint(0, len(lines)), extra)
    return lines


def pref_file(r: random.Random) -> str:
    generic_bias = r.choice([0.2, 0.5, 0.8])
    recs = [record(r, generic_bias) for _ in range(r.choice([1, 1, 2, 2, 3, 4]))]
    seps = []
    parts = []
    for i, rec in enumerate(recs):
        parts.append("\n".join(rec))
        if i < len(recs) - 1:
            seps.append(r.choice(["\n\n", "\n\n", "\n\n\n", "\n \n", "\n#c\n\n", "\n\r\n", "\n", "\n\t\n"]))
    text = parts[0]
    for s, p in zip(seps, parts[1:], strict=True):
        text += s + p
    if r.random() < 0.2:
        text = r.choice(["# header\n", "\n\n", "#\n#\n", " \n", "\n", "Explanation: x\n\n"]) + text
    text += r.choice(["\n", "\n", "\n", "", "\n\n", "\n# end", "\n# end\n", "\ngarbage\n", "\n  \n"])
    if r.random() < 0.12:
        text = text.replace("\n", "\r\n")
    elif r.random() < 0.03:
        text = text.replace("\n", "\n\r")
    elif r.random() < 0.03:
        i = r.randrange(len(text) + 1)
        text = text[:i] + r.choice(["\r", "\x00", "\v", "\f", "é"]) + text[i:]
    return text


FILENAMES = ["etc/apt/preferences", "etc/apt/preferences.d/pins", "etc/apt/preferences.d/10pins.pref",
             "etc/apt/preferences.d/99-z", "etc/apt/preferences.d/x.list",
             "etc/apt/preferences.d/x.pref.disabled",
             "etc/apt/preferences.d/.hidden", "etc/apt/preferences.d/a b", "etc/apt/preferences.d/foo~",
             "etc/apt/preferences.d/x.PREF", "etc/apt/preferences.d/y.", "etc/apt/preferences.d/z.conf",
             "etc/apt/preferences.d/a.b.pref", "etc/apt/preferences.d/0:x", "etc/apt/preferences.d/sub/p",
             "etc/apt/preferences.d/A", "etc/apt/preferences.d/a", "etc/apt/preferences.d/_u",
             "etc/apt/preferences.d/x.pref.pref", "etc/apt/preferences.d/p.bak"]
DR = ["bookworm", "bookworm-security", "stable", "stable-security", "now", "12", "12*", "a=stable-security",
      "n=bookworm", "o=Debian", "nonexistent", "*", "/sec/", "Bookworm", "12.8", "l=Debian-Security",
      "c=main", "*security", "x=y", "n=", "bookworm,stable", "stable ", "1*"]


def generate(r: random.Random) -> tuple[dict[str, str], str | None]:
    files: dict[str, str] = {}
    nfiles = r.choice([1, 1, 1, 2, 2, 3])
    for _ in range(nfiles):
        name = r.choice(FILENAMES[:4]) if r.random() < 0.75 else r.choice(FILENAMES)
        files[name] = pref_file(r)
    dr = r.choice(DR) if r.random() < 0.12 else None
    if r.random() < 0.03:
        files = {}
        dr = r.choice(DR)
    return files, dr
