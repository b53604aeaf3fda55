"""vmsec's rsyslog reader against the real rsyslogd (Debian 12's 8.2302, unpacked by scripts/test.sh into
.cache/rsyslog): ``rsyslogd -N1 -d`` loads a configuration as the daemon would and dumps every ruleset
with its actions and calls. For each case vmsec must find the same forwarding actions (module and, for
the legacy forms, target) in the same rulesets, and the same calls between rulesets."""

from __future__ import annotations

import os
import re
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from components import missing
from vmsec.collectors.reader import RootReader
from vmsec.errors import ErrorKind, ReadError
from vmsec.parsers.system.rsyslog import rsyslog_config

RSYSLOG = Path(__file__).resolve().parents[2] / ".cache" / "rsyslog" / "root"
RSYSLOGD = RSYSLOG / "usr/sbin/rsyslogd"
LIBS = RSYSLOG / "usr/lib/x86_64-linux-gnu"

# Each case: the files of a root, or just its /etc/rsyslog.conf ({R} is where the root is: the real path
# for rsyslogd, "" for vmsec, which reads the same files through a reader rooted there).
CONF = "etc/rsyslog.conf"
BEFORE, AFTER = "*.* @@before.example.com\n", "*.* @@after.example.com\n"
CASES: dict[str, str | dict[str, str | tuple[str, str]]] = {
    "legacy-udp-tcp": "*.* @logs.example.com\nauth.* @@10.0.0.5:6514\n",
    "legacy-options-ipv6": "*.* @@(o)logs.example.com:6514\n*.* @(o,z9)[2001:db8::1]:514\n"
                           "*.* @@ spaced.example.com\n",
    "legacy-template-comment": "*.* @@a.example.com # c\n*.* @@b.example.com:514;RSYSLOG_ForwardFormat\n"
                               "*.* @@c.example.com:514 ;T\n*.* @@d.example.com:514#x\n",
    "templates": 'action(type="omfwd" target="a.example.com" template="Nope")\n*.* @@b.example.com;Later\n'
                 'template(name="Later" type="string" string="%msg%")\n*.* @@c.example.com;Later\n'
                 '$template Legacy,"%msg%"\n*.* @@d.example.com; Legacy\n*.* @@e.example.com;later\n'
                 "*.* @@f.example.com;RSYSLOG_SyslogProtocol23Format\n*.* @@g.example.com;\n",
    "legacy-junk-after-port": "*.* @@a.example.com:514 junk\n*.* @@b.example.com junk\n",
    "legacy-no-omfwd-selector": "*.* :omfwd:logs.example.com:514\n",
    "commented-hash": "#*.* @@old.example.com\n  # *.* @@old2.example.com\n*.* /var/log/all\n",
    "block-comment": "/* *.* @@a.example.com\n*.* @@b.example.com */\n*.* /var/log/x\n",
    "block-comment-unclosed": "*.* @@before.example.com\n/* *.* @@after.example.com\n",
    "block-comment-in-object": 'action(type="omfwd" /* target="x" */ target="y.example.com")\n',
    "property-filter": ':programname, isequal, "sshd" @@10.0.0.9\n:msg, !contains, "x" @udp.example.com\n',
    "if-then-legacy": "if $programname == 'sshd' then @@if.example.com\n",
    "if-then-block-else": "if $syslogseverity <= 3 then {\n"
                          '  action(type="omfwd" target="crit.example.com" port="514")\n'
                          "} else {\n  *.* @@else.example.com\n}\n",
    "filter-not-at-line-start": 'if $msg contains "a" then { *.* @@one.example.com\n}\n',
    "ampersand": "*.* /var/log/all\n& @@amp.example.com\n",
    "ampersand-after-block": "if $msg contains 'a' then {\n"
                             '  action(type="omfwd" target="one.example.com")\n}\n'
                             "& @@two.example.com\n*.* @@three.example.com\n",
    "rainerscript-omfwd": 'action(\n  type="omfwd"\n  target="10.0.0.5" port="6514"\n'
                          '  protocol="tcp" StreamDriver="gtls")\n',
    "case-insensitive": 'ACTION(Type="omfwd" Target="upper.example.com")\n',
    "omrelp-without-module": 'action(type="omrelp" target="relp.example.com")\n'
                             "*.* :omrelp:relp2.example.com:2514\n",
    "omrelp-module-after": 'action(type="omrelp" target="early.example.com")\nmodule(load="omrelp")\n'
                           'action(type="omrelp" target="late.example.com")\n',
    "omrelp-modload": "$ModLoad omrelp\n*.* :omrelp:relp.example.com:2514\n",
    "include-dropins": {CONF: "$IncludeConfig {R}/etc/rsyslog.d/*.conf\n",
                        "etc/rsyslog.d/50-a.conf": "*.* @@a.example.com\n",
                        "etc/rsyslog.d/60-b.txt": "*.* @@not-included.example.com\n",
                        "etc/rsyslog.d/.hidden.conf": "*.* @@hidden.example.com\n"},
    "dropins-not-included": {CONF: "*.* /var/log/syslog\n",
                             "etc/rsyslog.d/60-remote.conf": "*.* @@remote.example.com\n"},
    "include-directory": {CONF: "$IncludeConfig {R}/etc/rsyslog.d/\n",
                          "etc/rsyslog.d/b.conf": "*.* @@b.example.com\n",
                          "etc/rsyslog.d/a.txt": "*.* @@a.example.com\n"},
    "include-object": {CONF: 'include(file="{R}/etc/rsyslog.d/*.conf" mode="optional")\n'
                             'include(file="{R}/etc/missing/*.conf")\n*.* @@after.example.com\n',
                       "etc/rsyslog.d/x.conf": 'action(type="omfwd" target="inc.example.com")\n'},
    "include-inside-ruleset": {CONF: 'ruleset(name="fwd") {\n$IncludeConfig {R}/etc/fwd.conf\n}\n'
                                     "*.* call fwd\n",
                               "etc/fwd.conf": "*.* @@in-ruleset.example.com\n"},
    "rulesets": 'ruleset(name="remote") { action(type="omfwd" target="r.example.com") }\n'
                'ruleset(name="unused") { action(type="omfwd" target="u.example.com") }\n*.* call remote\n',
    "ruleset-unclosed-by-legacy-action": 'ruleset(name="x") { *.* @@u.example.com }\n*.* call remote\n',
    "legacy-ruleset": "$RuleSet other\n*.* @@in-other.example.com\n"
                      "$RuleSet RSYSLOG_DefaultRuleset\n*.* @@back.example.com\n",
    "input-bound": 'module(load="imtcp")\ninput(type="imtcp" port="10514" ruleset="net")\n'
                   'ruleset(name="net") {\n  *.* @@net.example.com\n}\n',
    "stop-and-set": 'set $.x = "a";\nif $.x == "a" then stop\n*.* @@after-stop.example.com\n',
    "invalid-characters-skipped": "*.* @@good.example.com\nthis is not valid (\n*.* @@after.example.com\n",
    "stray-brace-ends-it": "*.* @@good.example.com\n}\n*.* @@after-brace.example.com\n",
    "unclosed-object-ends-it": '*.* @@good.example.com\naction(type="omfwd" target="x.example.com"\n',
    "one-letter-call": 'ruleset(name="r") {\n$ModLoad omrelp\n*.* :omrelp:relp.example.com:2514\n}\n'
                       "*.* call r\n",
    "users-and-files": "*.emerg :omusrmsg:*\nmail.* -/var/log/mail\nkern.* |/dev/xconsole\nuser1,user2 @x\n",
    # From an adversarial review against rsyslogd (each once disagreed with vmsec):
    "list-template-body": 'template(name="t" type="list") { property(name="msg") constant(value="x") }\n'
                          "*.* @@x.example.com\n",
    "crlf": "*.* @@logs.example.com:514\r\n",
    "crlf-include": {CONF: "$IncludeConfig {R}/etc/rsyslog.d/*.conf\r\n",
                     "etc/rsyslog.d/a.conf": "*.* @@inc.example.com\n"},
    "missing-include-ends-it": BEFORE + "$IncludeConfig {R}/etc/rsyslog-remote.conf\n" + AFTER,
    "dangling-link-ends-it": {CONF: BEFORE + "$IncludeConfig {R}/etc/rsyslog.d/*.conf\n" + AFTER,
                              "etc/rsyslog.d/10-old.conf": ("symlink", "/nonexistent"),
                              "etc/rsyslog.d/50-fwd.conf": "*.* @@dropin.example.com\n"},
    "single-equals": BEFORE + "if $msg = 'a' then stop\n" + AFTER,
    "hash-in-expression": BEFORE + "if $msg contains 'a' # c\nthen stop\n" + AFTER,
    "bad-escape-in-expression": BEFORE + "if re_match($msg, 'a\\.b') then stop\n" + AFTER,
    "dollar-in-double-quotes": BEFORE + 'if $msg contains "$" then stop\n' + AFTER,
    "bad-escape-in-object": BEFORE + 'template(name="t" type="string" string="\\d")\n' + AFTER,
    "unquoted-parameter": BEFORE + 'action(type="omfwd" target="a.example.com" port=514)\n' + AFTER,
    "commas-in-object": BEFORE + 'action(type="omfwd", target="a.example.com")\n' + AFTER,
    "single-quotes-in-object": BEFORE + "action(type='omfwd' target='a.example.com')\n" + AFTER,
    "empty-if-block": BEFORE + 'if $msg contains "a" then {\n}\n' + AFTER,
    "bsd-tag-in-block": BEFORE + 'ruleset(name="r") {\n!sshd\n*.* @@x.example.com\n}\n',
    "ruleset-names-ignore-case": 'module(load="imtcp")\ninput(type="imtcp" port="514" ruleset="Forward")\n'
                                 'ruleset(name="forward") { action(type="omfwd" target="f.example.com") }\n'
                                 "$RuleSet Remote\n*.* @@a.example.com\n"
                                 "$RuleSet remote\n*.* @@b.example.com\n",
    "ruleset-comment": "$RuleSet remote # from network\n*.* @@central.example.com\n",
    "include-text": 'include(text="*.* @@fromtext.example.com")\n',
    "chained-lost-at-top-level": 'action(type="omfile" file="/var/log/all.log")\n'
                                 '& action(type="omfwd" target="central.example.com")\n*.* /var/log/syslog\n'
                                 "@@first.example.com\n& @@kept.example.com\n$RuleSet other\n*.* /q\n",
    "continuation-lines": "# note \\\n*.* @@hidden.example.com\n*.* @@a.example.com:514 \\\n"
                          "  ;RSYSLOG_SyslogProtocol23Format\n",
    "line-over-fgets-buffer": "#" + "x" * 10238 + "*.* @@split.example.com\n",
    "glob-in-directory": {CONF: "$IncludeConfig {R}/etc/rsyslog.d/*/*.conf\n",
                          "etc/rsyslog.d/site/a.conf": "*.* @@site.example.com\n"},
    "directory-recursion": {CONF: "$IncludeConfig {R}/etc/rsyslog.d/\n",
                            "etc/rsyslog.d/sub/a.conf": "*.* @@sub.example.com\n"},
    "self-include": {CONF: "$IncludeConfig {R}/etc/rsyslog.d/*.conf\n",
                     "etc/rsyslog.d/00-copy.conf": "$IncludeConfig {R}/etc/rsyslog.d/*.conf\n",
                     "etc/rsyslog.d/50-fwd.conf": "*.* @@fwd.example.com\n"},
    "unclosed-comment-in-dropin": {CONF: BEFORE + "$IncludeConfig {R}/etc/rsyslog.d/*.conf\n"
                                         "*.* @@main.example.com\n",
                                   "etc/rsyslog.d/50-x.conf": "/* disabled\n"},
    "duplicate-ruleset": BEFORE + 'ruleset(name="d") { stop }\n'
                         'ruleset(name="d") { action(type="omfwd" target="b") }\n'
                         'ruleset(name="RSYSLOG_DefaultRuleset") { action(type="omfwd" target="c") }\n',
    "type-case": 'action(type="OMFWD" target="u.example.com")\naction(type="builtin:omfwd" target="b")\n',
    "omrelp-selector-case": BEFORE + "$ModLoad omrelp\n*.* :OMRELP:r.example.com:2514\n",
    "target-array": BEFORE + 'action(type="omfwd" target=["a.example.com"])\n',
    "template-name-space": '$template T ,"%msg%"\n*.* @@a.example.com;T\n*.* @@b.example.com\n',
    "forward-default-template": BEFORE + "$ActionForwardDefaultTemplate Nope\n*.* @@a.example.com\n",
    "reload-lookup-table-else": 'if $msg contains "r" then reload_lookup_table("t", "x")\n'
                                "else @@e.example.com\n",
    "property-at-top-level": BEFORE + 'property(name="msg")\n' + AFTER,
    "deep-nesting": "if 1 == 1 then {\n" * 101 + "@@deep.example.com\n" + "}\n" * 101,
    "modload-path": "$ModLoad {M}/omrelp.so\n*.* :omrelp:r.example.com:2514\n",
    # From a second review against rsyslogd (each had disagreed with vmsec; BEFORE shows the
    # configuration loads up to the point each is about):
    'config-enabled-off': BEFORE + 'action(type="omfwd" target="a.example.com" config.enabled="off")\n',
    'config-enabled-yes': BEFORE + 'action(type="omfwd" target="a.example.com" config.enabled="yes")\n',
    'config-enabled-backtick':
        BEFORE + 'action(type="omfwd" target="a.example.com" config.enabled=`echo $FWD_ENABLED`)\n',
    'config-enabled-module': BEFORE + ('module(load="omrelp" config.enabled="off")\n'
            'action(type="omrelp" target="r.example.com" port="2514")\n'),
    'config-enabled-include': {CONF: ('*.* @@before.example.com\n'
            'include(file="{R}/etc/fwd.conf" config.enabled="off")\n'),
        'etc/fwd.conf': '*.* @@inc.example.com\n'},
    'config-enabled-ruleset':
        BEFORE + 'ruleset(name="remote" config.enabled="off") {\n'
                 '  action(type="omfwd" target="a.example.com")\n}\n',
    'include-dangling-link': {CONF: ('*.* @@before.example.com\n'
            'include(file="{R}/etc/rsyslog.d/*.conf" mode="optional")\n'),
        'etc/rsyslog.d/00-first.conf': '*.* @@first.example.com\n',
        'etc/rsyslog.d/10-old.conf': ('symlink', '/nonexistent'),
        'etc/rsyslog.d/50-remote.conf': '*.* @@logs.example.com\n'},
    'legacy-dangling-in-subdir': {CONF: ('*.* @@before.example.com\n'
            '$IncludeConfig {R}/etc/rsyslog.d/\n'
            '*.* @@after.example.com\n'),
        'etc/rsyslog.d/a/10-old.conf': ('symlink', '/nonexistent'),
        'etc/rsyslog.d/b.conf': '*.* @@b.example.com\n'},
    'continuation-in-object': BEFORE + ('action(type="omfwd" \\\n'
            '  target="a.example.com"\n'
            '  port="514")\n'
            '*.* @@after.example.com\n'),
    'continuation-in-if': BEFORE + ("if $programname == 'a' or \\\n"
            "   $programname == 'b'\n"
            '   then @@x.example.com\n'
            '*.* @@after.example.com\n'),
    'include-dir-noslash': {CONF: '*.* @@before.example.com\n$IncludeConfig {R}/etc/rsyslog.d\n',
        'etc/rsyslog.d/a.conf': '*.* @@a.example.com\n',
        'etc/rsyslog.d.bak/old.conf': '*.* @@old.example.com\n'},
    'quirk-include-not-a-statement': BEFORE + '@@a.example.com\n& @@b.example.com\ninclude(text="")\n',
    'quirk-ruleset-block-then-legacy': BEFORE + ('ruleset(name="remote") {\n'
            ' action(type="omfile" file="/var/log/remote")\n'
            ' action(type="omfwd" target="a.example.com")\n'
            '}\n'
            '$RuleSet remote\n'
            '*.* /var/log/y\n'),
    'ruleset-tab': BEFORE + '$RuleSet\tremote\n*.* @@r.example.com\n',
    'defaultruleset-before-ruleset': BEFORE + ('$DefaultRuleset remote\n'
            'ruleset(name="remote") { action(type="omfwd" target="a.example.com") }\n'),
    'tilde-longest-match': BEFORE + '*.* ~ @@x.example.com\n',
    'tilde-brace': BEFORE + 'if $msg contains "x" then { ~}\n*.* @@after.example.com\n',
    'trailing-context-minus-host': BEFORE + ('if $msg contains "x" then {\n'
            '-host\n'
            '@@a.example.com\n'
            '}\n'
            '*.* @@after.example.com\n'),
    'protocol-invalid': BEFORE + 'action(type="omfwd" target="a.example.com" protocol="tls")\n',
    'int-invalid': BEFORE + 'action(type="omfwd" target="a.example.com" action.resumeRetryCount="forever")\n',
    'binary-invalid': BEFORE + 'action(type="omfwd" target="a.example.com" keepalive="yes")\n',
    'target-whitespace': BEFORE + 'action(type="omfwd" target="logs.example.com ")\n',
    'target-cat-newline': {CONF: ('*.* @@before.example.com\n'
            'action(type="omfwd" target=`cat {R}/etc/loghost`)\n'),
        'etc/loghost': 'logs.example.com\n'},
    'default-template-rainer': BEFORE + ('$ActionForwardDefaultTemplate Nope\n'
            'action(type="omfwd" target="a.example.com")\n'),
    'module-template': BEFORE + 'module(load="builtin:omfwd" template="Nope")\n*.* @@b.example.com\n',
    'template-no-type': BEFORE + ('template(name="t" string="%msg%")\n'
            'action(type="omfwd" target="a.example.com" template="t")\n'),
    'template-list-nobody': BEFORE + ('template(name="t" type="list")\n'
            'action(type="omfwd" target="a.example.com" template="t")\n'),
    'legacy-template-unquoted': BEFORE + '$template t,%msg%\n*.* @@a.example.com;t\n',
    'relp-module-dotso': BEFORE + ('module(load="omrelp.so")\n'
            'action(type="omrelp" target="r.example.com" port="2514")\n'),
    'relp-legacy-junk': BEFORE + '$ModLoad omrelp\n*.* :omrelp:r.example.com:2514 junk\n',
    'include-trailing-space': {CONF: '*.* @@before.example.com\ninclude(file="{R}/etc/f.conf ")\n',
        'etc/f.conf': '*.* @@f.example.com\n'},
    'include-file-and-text': {CONF: ('*.* @@before.example.com\n'
            'include(file="{R}/etc/f.conf" text="*.* @@t.example.com")\n'),
        'etc/f.conf': '*.* @@f.example.com\n'},
    'glob-trailing-slash': {CONF: '*.* @@before.example.com\n$IncludeConfig {R}/etc/rsyslog.d/*/\n',
        'etc/rsyslog.d/s/a.conf': '*.* @@a.example.com\n',
        'etc/rsyslog.d/b.conf': '*.* @@b.example.com\n'},
    'text-directive-no-newline': BEFORE + 'include(text="$ModLoad omrelp")\n*.* :omrelp:r.example.com:2514\n',
    'exists-string': BEFORE + 'if exists("x") then @@e.example.com\n*.* @@after.example.com\n',
    'not-chain-recursion': BEFORE + 'if ' + 'not ' * 1000 + '1 == 1 then @@n.example.com\n',
    'unicode-digit': BEFORE + 'if $msg == ² then stop\n*.* @@after.example.com\n',
}


_HOST = re.compile(r"(?:@@?|:omrelp:)(?:\([^)]*\))?(?:\[([^\]]*)\]|([^:;#]+))")


def _oracle(conf: Path) -> tuple[Counter[tuple[str, str]], set[str], set[tuple[str, str]]]:
    """(forwarding actions by (ruleset, module), legacy targets, calls) as rsyslogd loaded them."""
    proc = subprocess.run([str(RSYSLOGD), "-N1", "-d", "-f", str(conf), "-M", str(LIBS / "rsyslog")],
                          env={**os.environ, "LD_LIBRARY_PATH": str(LIBS)}, capture_output=True, timeout=60,
                          check=False, cwd=conf.parent)
    dump = proc.stdout.decode(errors="replace") + proc.stderr.decode(errors="replace")
    actions: Counter[tuple[str, str]] = Counter()
    targets: set[str] = set()
    calls: set[tuple[str, str]] = set()
    ruleset = None
    for raw in dump.splitlines():
        text = raw.split(": ", 1)[1] if ": " in raw else raw
        if m := re.search(r"ruleset '(.+)' after optimization:", raw):
            ruleset = m.group(1)
        elif "ruleset optimization phase finished" in raw or "before optimization" in raw:
            ruleset = None
        elif ruleset is None:
            continue
        elif m := re.search(r"ACTION \d+ \[(?:builtin:)?([^:\]]*):(.*)\]$", text):
            module = m.group(1).rsplit("/", 1)[-1].removesuffix(".so")  # $ModLoad /path/omrelp.so
            if module in ("omfwd", "omrelp"):
                actions[(ruleset.lower(), module)] += 1
                legacy = m.group(2)
                host = _HOST.match(legacy)
                if host:
                    targets.add((host.group(1) or host.group(2)).split()[0])
        elif m := re.search(r"CALL \[([^,\]]+)", text):
            calls.add((ruleset.lower(), m.group(1).lower()))
    assert "rsyslog ruleset" in dump, dump[-2000:]
    return actions, targets, calls


def _write(root: Path, files: dict[str, str | tuple[str, str]], where: str) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, tuple):
            if not path.is_symlink():
                path.symlink_to(text[1])
        else:
            module_dir = str(LIBS / "rsyslog") if where else "/usr/lib/x86_64-linux-gnu/rsyslog"
            path.write_text(text.replace("{R}", where).replace("{M}", module_dir))


# Cases in which rsyslogd loads no forwarding action at all (the others must show one in the oracle's
# dump, so that a broken dump cannot pass for agreement).
NOTHING = {"commented-hash", "filter-not-at-line-start", "block-comment", "legacy-no-omfwd-selector",
           "omrelp-without-module", "dropins-not-included", "ruleset-unclosed-by-legacy-action",
           "users-and-files"}


@pytest.mark.parametrize("case", sorted(CASES))
def test_forwarding_actions_as_rsyslogd_loads_them(tmp_path: Path, case: str) -> None:
    if not os.access(RSYSLOGD, os.X_OK):
        missing("rsyslogd", f"{RSYSLOGD} (scripts/test.sh unpacks Debian's rsyslog there)")
    spec = CASES[case]
    files: dict[str, str | tuple[str, str]] = spec if isinstance(spec, dict) else {CONF: spec}
    root = tmp_path / "root"
    _write(root, files, str(root))
    actions, targets, calls = _oracle(root / CONF)
    _write(root, files, "")  # vmsec reads the same files from inside the root
    conf = rsyslog_config(RootReader(str(root)))
    assert actions or targets or calls or case in NOTHING, "the oracle loaded nothing"
    ours: Counter[tuple[str, str]] = Counter((f.ruleset.lower(), f.module) for f in conf.forwards)
    assert ours == actions
    assert {f.target.split()[0] for f in conf.forwards if not f.text.startswith("action(")} == targets
    assert set(conf.calls) == calls


@pytest.mark.parametrize("dropin", ["*.* @@logs.example.com:6514\n", "#*.* @@logs.example.com:6514\n"])
def test_debian_12s_own_rsyslog_conf_with_a_dropin(tmp_path: Path, dropin: str) -> None:
    """The rsyslog.conf Debian 12 ships (from the unpacked package), forwarding from a drop-in or not."""
    if not os.access(RSYSLOGD, os.X_OK):
        missing("rsyslogd", f"{RSYSLOGD} (scripts/test.sh unpacks Debian's rsyslog there)")
    shipped = (RSYSLOG / "etc/rsyslog.conf").read_text()
    assert "$IncludeConfig /etc/rsyslog.d/*.conf" in shipped
    root = tmp_path / "root"
    files: dict[str, str | tuple[str, str]] = {CONF: shipped.replace("/etc/rsyslog.d/", "{R}/etc/rsyslog.d/"),
                                               "etc/rsyslog.d/60-remote.conf": dropin}
    _write(root, files, str(root))
    actions, targets, calls = _oracle(root / CONF)
    _write(root, files, "")
    conf = rsyslog_config(RootReader(str(root)))
    assert Counter((f.ruleset.lower(), f.module) for f in conf.forwards) == actions
    expected = {"logs.example.com"} if dropin[0] != "#" else set()
    assert {f.target for f in conf.forwards} == targets == expected
    assert set(conf.calls) == calls == set()


def test_a_missing_abort_if_missing_include_makes_rsyslogd_exit(tmp_path: Path) -> None:
    """rsyslogd exits at start ("abort-if-missing"): nothing at all runs, the forward before it
    included (the oracle cannot dump a configuration the daemon refuses to run)."""
    root = tmp_path / "root"
    _write(root, {CONF: BEFORE + 'include(file="/etc/none.conf" mode="abort-if-missing")\n' + AFTER}, "")
    conf = rsyslog_config(RootReader(str(root)))
    assert conf.forwards == [] and conf.stopped is not None and "rsyslogd exits" in conf.stopped
    _write(root, {CONF: BEFORE + 'include(file="/etc/none.conf" mode="optional")\n' + AFTER}, "")
    assert len(rsyslog_config(RootReader(str(root))).forwards) == 2


def test_backtick_reads_count_against_the_byte_budget(tmp_path: Path) -> None:
    """Thousands of ``cat FILE`` backticks read the guest file only while the configuration's byte
    budget lasts; past it the file is recorded once as not read (vmsec had read 1.2 GB for this)."""
    root = tmp_path / "root"
    _write(root, {"etc/big": "x" * 60_000,
                  CONF: 'action(type="omfwd" target=`cat /etc/big`)\n' * 20_000}, "")
    errors: list[ReadError] = []
    rsyslog_config(RootReader(str(root)), errors)
    assert [(e.source, e.kind) for e in errors] == [("/etc/big", ErrorKind.TOO_LARGE)]
