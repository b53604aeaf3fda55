"""Generate src/vmsec/data/qemu-cpu-models-x86_64.json from a real QEMU, over QMP.

Run: ``.venv/bin/python scripts/gen_qemu_cpu_models.py [--qemu qemu-system-x86_64] [--check]``

QEMU is started with ``-machine none -accel tcg -qmp stdio`` (no guest, no KVM needed) and asked:

- ``query-cpu-definitions``: every named x86 CPU model and what it is an alias of;
- ``query-cpu-model-expansion`` (``full``) for each model: the CPU features it turns on — including
  ``vmx``/``svm`` (nested virtualization) and the speculative-execution mitigation flags;
- ``query-machines``: the default machine type (``is-default``) and each machine type's default CPU.

The same is asked of ``qemu-system-i386`` (when installed) for the machine defaults of i686 guests.
The file records the QEMU version and package it came from. ``--check`` compares the shipped file with
the live QEMU instead of writing it (exit 1 on a difference); tests/checks/test_qemu_cpu_models.py does
the same in the test suite.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

OUTPUT = Path(__file__).resolve().parents[1] / "src" / "vmsec" / "data" / "qemu-cpu-models-x86_64.json"
TIMEOUT_S = 60


class Qmp:
    """A QEMU process with no guest, driven over QMP on its stdin/stdout."""

    def __init__(self, binary: str) -> None:
        self.proc = subprocess.Popen(
            [binary, "-machine", "none", "-accel", "tcg", "-nodefaults", "-nographic", "-display", "none",
             "-qmp", "stdio"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            text=True)
        greeting = self._read()
        self.version = greeting["QMP"]["version"]
        self.execute("qmp_capabilities")

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("QEMU closed its QMP channel")
        return json.loads(line)  # type: ignore[no-any-return]

    def execute(self, command: str, **arguments: Any) -> Any:
        assert self.proc.stdin is not None
        message: dict[str, Any] = {"execute": command}
        if arguments:
            message["arguments"] = arguments
        self.proc.stdin.write(json.dumps(message) + "\n")
        self.proc.stdin.flush()
        while True:
            reply = self._read()
            if "error" in reply:
                raise RuntimeError(f"{command}: {reply['error']}")
            if "return" in reply:
                return reply["return"]

    def close(self) -> None:
        with contextlib.suppress(RuntimeError, BrokenPipeError, OSError):
            self.execute("quit")
        try:
            self.proc.wait(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> Qmp:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _cpu_name(typename: str) -> str:
    """``qemu64-x86_64-cpu`` → ``qemu64``."""
    for suffix in ("-x86_64-cpu", "-i386-cpu"):
        if typename.endswith(suffix):
            return typename[: -len(suffix)]
    return typename


def machines(qmp: Qmp) -> dict[str, Any]:
    """The default machine type and every machine type's default CPU model."""
    default = None
    default_cpu: dict[str, str] = {}
    for m in qmp.execute("query-machines"):
        cpu = _cpu_name(m["default-cpu-type"]) if m.get("default-cpu-type") else None
        names = [m["name"]] + ([m["alias"]] if m.get("alias") else [])
        for name in names:
            if cpu:
                default_cpu[name] = cpu
        if m.get("is-default"):
            default = m.get("alias") or m["name"]
    return {"default_machine": default, "default_cpu": dict(sorted(default_cpu.items()))}


def models(qmp: Qmp) -> dict[str, Any]:
    """Every named CPU model: the features its full expansion turns on, and what it aliases."""
    out: dict[str, Any] = {}
    for d in sorted(qmp.execute("query-cpu-definitions"), key=lambda d: d["name"]):
        name = d["name"]
        if name in ("host", "max", "base"):
            continue  # host/max depend on the machine they run on; base is featureless by design
        props = qmp.execute("query-cpu-model-expansion", type="full", model={"name": name})["model"]["props"]
        entry: dict[str, Any] = {"features": sorted(k for k, v in props.items() if v is True)}
        if d.get("alias-of"):
            entry["alias_of"] = d["alias-of"]
        out[name] = entry
    return out


def generate(x86_64: str, i386: str | None) -> dict[str, Any]:
    with Qmp(x86_64) as qmp:
        version = qmp.version
        data: dict[str, Any] = {
            "provenance": {
                "qemu": f"{version['qemu']['major']}.{version['qemu']['minor']}.{version['qemu']['micro']}",
                "package": version.get("package", "").strip(),
                "binary": Path(x86_64).name,
                "generated_by": "scripts/gen_qemu_cpu_models.py",
                "method": "QMP on -machine none -accel tcg: query-cpu-definitions, "
                          "query-cpu-model-expansion type=full, query-machines",
            },
            "machines": {"x86_64": machines(qmp)},
            "models": models(qmp),
        }
    if i386:
        with Qmp(i386) as qmp:
            data["machines"]["i686"] = machines(qmp)
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--qemu", default="qemu-system-x86_64")
    parser.add_argument("--qemu-i386", default="qemu-system-i386")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--check", action="store_true", help="compare with the shipped file, write nothing")
    args = parser.parse_args(argv)
    x86_64 = shutil.which(args.qemu)
    if x86_64 is None:
        print(f"{args.qemu} is not installed", file=sys.stderr)
        return 2
    data = generate(x86_64, shutil.which(args.qemu_i386))
    text = json.dumps(data, indent=1, sort_keys=True) + "\n"
    if args.check:
        shipped = json.loads(args.output.read_text())
        same = shipped["models"] == data["models"] and shipped["machines"] == data["machines"]
        print("same as the live QEMU" if same else "differs from the live QEMU")
        return 0 if same else 1
    args.output.write_text(text)
    print(f"{args.output}: {len(data['models'])} models from QEMU {data['provenance']['qemu']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
