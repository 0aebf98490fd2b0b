"""Running ``edgetpu_compiler`` when it is installed, and reading what it says.

The compiler exists only for x86-64 Debian/Ubuntu (Coral's apt repository); on any other
machine the check says so and relies on the rules in :mod:`.check`.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

COMPILER = "edgetpu_compiler"

_VERSION = re.compile(r"Edge TPU Compiler version\s+(\S+)")
_COUNT = re.compile(r"Number of operations that will run on (Edge TPU|CPU):\s*(\d+)")
_SUBGRAPHS = re.compile(r"Number of Edge TPU subgraphs:\s*(\d+)")
_TOTAL = re.compile(r"Total number of operations:\s*(\d+)")
_ROW = re.compile(r"^\s*([A-Z][A-Z0-9_]*|[a-z][\w-]*)\s+(\d+)\s+(\S.*?)\s*$")


@dataclass
class CompilerOpRow:
    op: str
    count: int
    status: str

    @property
    def mapped(self) -> bool:
        return self.status.startswith("Mapped to Edge TPU")


@dataclass
class CompilerLog:
    version: str | None
    rows: list[CompilerOpRow] = field(default_factory=list)
    edgetpu_ops: int | None = None
    cpu_ops: int | None = None
    total_ops: int | None = None
    subgraphs: int | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def mapped(self) -> int:
        """Ops on the Edge TPU: the summary line when present, else the table's sum."""
        if self.edgetpu_ops is not None:
            return self.edgetpu_ops
        return sum(row.count for row in self.rows if row.mapped)

    @property
    def unmapped(self) -> int:
        if self.cpu_ops is not None:
            return self.cpu_ops
        return sum(row.count for row in self.rows if not row.mapped)


def parse_compiler_log(text: str) -> CompilerLog:
    """Parse the compiler's console output and/or its ``*_edgetpu.log`` operation table."""
    version = _VERSION.search(text)
    log = CompilerLog(version.group(1) if version else None)
    for kind, count in _COUNT.findall(text):
        if kind == "CPU":
            log.cpu_ops = int(count)
        else:
            log.edgetpu_ops = int(count)
    if (match := _SUBGRAPHS.search(text)):
        log.subgraphs = int(match.group(1))
    if (match := _TOTAL.search(text)):
        log.total_ops = int(match.group(1))
    in_table = False
    for line in text.splitlines():
        if re.match(r"^\s*Operator\s+Count\s+Status\s*$", line):
            in_table = True
            continue
        if line.startswith("ERROR:") or "Invalid model" in line or "Internal compiler error" in line:
            log.errors.append(line.strip())
        if in_table and (row := _ROW.match(line)):
            log.rows.append(CompilerOpRow(row.group(1), int(row.group(2)), row.group(3)))
    if log.edgetpu_ops is None and log.rows and log.cpu_ops is None and all(r.mapped for r in log.rows):
        log.cpu_ops = 0
    return log


def find_compiler() -> str | None:
    return shutil.which(COMPILER)


def run_compiler(model: str | Path, out_dir: str | Path | None = None, timeout: float = 600) -> CompilerLog:
    """Compile ``model``; returns the parsed log (console output plus the operation log)."""
    compiler = find_compiler()
    if compiler is None:
        raise FileNotFoundError(f"{COMPILER} is not on PATH")
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(out_dir) if out_dir else Path(tmp)
        proc = subprocess.run([compiler, "-s", "-o", str(target), str(model)],
                              capture_output=True, text=True, timeout=timeout)
        text = proc.stdout + "\n" + proc.stderr
        if not re.search(r"^\s*Operator\s+Count\s+Status", text, re.M):  # the table is printed once, with -s
            for op_log in target.glob("*_edgetpu.log"):
                text += "\n" + op_log.read_text(errors="replace")
    log = parse_compiler_log(text)
    if proc.returncode != 0 and not log.errors:
        log.errors.append(f"{COMPILER} exited with status {proc.returncode}")
    return log
