"""unattended-upgrades 2.9's packaged script (Debian 12), loaded as an oracle. scripts/test.sh unpacks the
.deb into .cache (nothing is installed); ``LOAD`` is the start of a child program that imports it with
its apt bindings replaced by empty stand-ins (a test then sets ``apt_pkg.config`` to a ``Config`` of its
lists) and ``lsb_release`` answering for Debian 12. The script's path is the child's first argument."""

from __future__ import annotations

from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / ".cache/unattended-upgrades/root/usr/bin/unattended-upgrade"

LOAD = r"""
import importlib.machinery, json, subprocess, sys, types

class Anything(type):  # any attribute of apt & co.: a class (the script subclasses some), never used here
    def __getattr__(cls, name):
        return Anything(name, (), {})

class Stub(types.ModuleType):
    def __getattr__(self, name):
        return Anything(name, (), {})

for name in ("apt", "apt_inst", "apt_pkg", "distro_info"):
    sys.modules[name] = Stub(name)
real = subprocess.check_output
answers = {"-c": "bookworm", "-d": "Debian GNU/Linux 12 (bookworm)", "-i": "Debian"}
def check_output(args, **kw):
    return answers[args[1]] if args[0] == "lsb_release" else real(args, **kw)
subprocess.check_output = check_output
module = types.ModuleType("uu")
module.__file__ = sys.argv[1]
importlib.machinery.SourceFileLoader("uu", sys.argv[1]).exec_module(module)


class Config:  # apt_pkg.config's stand-in: a test gives it the case's lists
    def __init__(self, lists):
        self.lists = lists
    def value_list(self, key):
        return self.lists.get(key, [])
"""
