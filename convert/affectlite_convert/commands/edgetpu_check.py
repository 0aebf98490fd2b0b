"""`edgetpu-check`: whether the Edge TPU compiler maps a model, op by op."""

from __future__ import annotations

import json
from pathlib import Path



def add_to(parent, add) -> None:
    """The command's parser, under ``parent`` (``add`` makes a subparser with the shared options)."""
    chk = add(parent, "edgetpu-check", "whether the Edge TPU compiler can map this model, op by op",
              ["affectlite-convert edgetpu-check face_int8.tflite --json"])
    chk.add_argument("model", type=Path, help="an int8 .tflite")
    chk.add_argument("--no-compiler", action="store_true", help="do not run edgetpu_compiler even if installed")
    chk.add_argument("--json", action="store_true", help="the verdict and the op table as JSON")
    chk.set_defaults(handler=run)


def run(args) -> int:
    from dataclasses import asdict

    from affectlite_convert.edgetpu.check import check_model
    from affectlite_convert.edgetpu.compiler import COMPILER, find_compiler, run_compiler

    report = check_model(args.model)
    ok = report.fully_mappable
    compiler: dict = {"ran": False}
    if args.no_compiler:
        compiler["why_not"] = "--no-compiler"
    elif find_compiler() is None:
        compiler["why_not"] = "not installed here; it ships for x86-64 Debian/Ubuntu in Coral's apt repository"
    else:
        log = run_compiler(args.model)
        compiler = {"ran": True, "version": log.version, "mapped": log.mapped, "unmapped": log.unmapped,
                    "rows": [asdict(row) for row in log.rows], "errors": log.errors}
        ok = ok and not log.errors and log.unmapped == 0
    if args.json:
        print(json.dumps({"model": str(args.model), "fully_mappable": ok, "ops_on_edgetpu": report.mapped,
                          "ops_on_cpu": report.on_cpu, "model_problems": report.model_problems,
                          "ops": [asdict(op) for op in report.ops], "compiler": compiler}, indent=2))
        return 0 if ok else 1
    print(report.render())
    if not compiler["ran"]:
        print(f"\n{COMPILER}: not run ({compiler['why_not']}), so this verdict comes from the rules above only")
    else:
        print(f"\n{COMPILER} {compiler['version']}: {compiler['mapped']} ops mapped to the Edge TPU, "
              f"{compiler['unmapped']} on the CPU")
        for row in compiler["rows"]:
            print(f"  {row['op']:<30} {row['count']:>4}  {row['status']}")
        for error in compiler["errors"]:
            print(f"  {error}")
    return 0 if ok else 1
