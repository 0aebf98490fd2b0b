"""Reading a ``.tflite`` flatbuffer and saying, op by op, what the Edge TPU compiler will map.

The compiler maps the graph from its start up to the first op it cannot run; that op and
everything after it run on the CPU (compiler 16's default, one Edge TPU subgraph). So the report
names that first op: it is the one to change.

Uses the flatbuffer schema that ships with ai-edge-litert, so the check also runs on a device
install without TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from affectlite_convert.edgetpu.ops import (
    COMPILED_CUSTOM_OP, CONDITIONS, CONSTANT_TYPES, EDGE_OPS, EIGHT_BIT, LSTM_INTERNAL_TYPES, LSTM_OPS, MAX_VERSION,
)


@dataclass
class OpVerdict:
    index: int
    op: str
    version: int
    status: str                      # "edgetpu", "cpu-edge" (float I/O at the model's edge), "unsupported", "after-split"
    reasons: list[str] = field(default_factory=list)


@dataclass
class EdgeTpuReport:
    model: str
    ops: list[OpVerdict]
    model_problems: list[str]

    @property
    def first_unsupported(self) -> OpVerdict | None:
        return next((op for op in self.ops if op.status == "unsupported"), None)

    @property
    def mapped(self) -> int:
        return sum(op.status == "edgetpu" for op in self.ops)

    @property
    def on_cpu(self) -> int:
        return len(self.ops) - self.mapped

    @property
    def fully_mappable(self) -> bool:
        return not self.model_problems and all(op.status in ("edgetpu", "cpu-edge") for op in self.ops)

    def render(self) -> str:
        lines = [f"Edge TPU check (compiler 16 rules) for {self.model}", ""]
        lines.append(f"{'#':>3}  {'op':<30} {'ver':>3}  status")
        for op in self.ops:
            status = {"edgetpu": "Edge TPU", "cpu-edge": "CPU (float I/O at the model's edge)",
                      "unsupported": "CPU: NOT MAPPABLE", "after-split": "CPU (after the first unmappable op)"}[op.status]
            lines.append(f"{op.index:>3}  {op.op:<30} {op.version:>3}  {status}")
            lines += [f"{'':>8}- {reason}" for reason in op.reasons]
        lines.append("")
        lines += [f"model: {problem}" for problem in self.model_problems]
        first = self.first_unsupported
        if first is not None:
            lines.append(f"first unmappable op: #{first.index} {first.op}; it and the {len(self.ops) - first.index - 1} ops after it run on the CPU")
        lines.append(f"summary: {self.mapped} of {len(self.ops)} ops on the Edge TPU, {self.on_cpu} on the CPU"
                     f" -> {'every op mappable' if self.fully_mappable else 'NOT fully mappable'}")
        return "\n".join(lines)


def _schema():
    try:
        from ai_edge_litert import schema_py_generated as schema
    except ImportError:  # pragma: no cover - depends on the installed interpreter package
        from tensorflow.lite.python import schema_py_generated as schema
    return schema


def check_model(path: str | Path) -> EdgeTpuReport:
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such model file")
    data = path.read_bytes()
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ValueError(f"{path}: not a TFLite flatbuffer (missing the 'TFL3' identifier)")
    schema = _schema()
    try:
        model = schema.ModelT.InitFromPackedBuf(data, 0)
    except Exception as exc:
        raise ValueError(f"{path}: corrupt TFLite flatbuffer ({exc})") from exc
    op_names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    type_names = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}

    problems = []
    if len(model.subgraphs) != 1:
        problems.append(f"{len(model.subgraphs)} subgraphs; the Edge TPU takes models with exactly one (no control flow such as WHILE)")
    graph = model.subgraphs[0]
    graph_inputs, graph_outputs = set(graph.inputs), set(graph.outputs)

    def is_constant(tensor) -> bool:
        buffer = model.buffers[tensor.buffer] if tensor.buffer < len(model.buffers) else None
        return buffer is not None and buffer.data is not None and len(buffer.data) > 0

    verdicts: list[OpVerdict] = []
    split = False
    for index, op in enumerate(graph.operators or []):
        code = model.operatorCodes[op.opcodeIndex]
        builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
        custom = code.customCode.decode() if code.customCode else None
        name = custom if builtin == schema.BuiltinOperator.CUSTOM and custom else op_names.get(builtin, str(builtin))
        reasons: list[str] = []
        edge = False

        if custom == COMPILED_CUSTOM_OP:
            reasons.append("already compiled for the Edge TPU")
        elif name not in MAX_VERSION:
            reasons.append("op not supported by the Edge TPU")
        elif code.version > MAX_VERSION[name]:
            reasons.append(
                f"version {code.version} is newer than compiler 16 accepts (<= {MAX_VERSION[name]}); "
                "this usually follows from a float or int16 tensor or an option the Edge TPU lacks"
            )
        if name in CONDITIONS:
            reasons.append(f"mapped only when: {CONDITIONS[name]}")

        inputs = [i for i in op.inputs if i >= 0]
        outputs = [i for i in op.outputs if i >= 0]
        for i in inputs + outputs:
            tensor = graph.tensors[i]
            kind = type_names.get(tensor.type, str(tensor.type))
            label = tensor.name.decode(errors="replace")[:60]
            if name in LSTM_OPS and kind in LSTM_INTERNAL_TYPES and i not in outputs:
                continue
            if is_constant(tensor):
                if kind not in CONSTANT_TYPES:
                    reasons.append(f"constant tensor '{label}' is {kind}; weights must be 8-bit (biases int32)")
            elif kind not in EIGHT_BIT:
                at_edge = name in EDGE_OPS and (
                    (name == "QUANTIZE" and i in graph_inputs) or (name == "DEQUANTIZE" and i in graph_outputs))
                if at_edge:
                    edge = True
                else:
                    reasons.append(f"tensor '{label}' is {kind}; the Edge TPU computes in int8/uint8 only")
            signature = tensor.shapeSignature if tensor.shapeSignature is not None else tensor.shape
            if signature is not None and any(int(d) < 0 for d in signature):
                reasons.append(f"tensor '{label}' has a dynamic shape {list(map(int, signature))}; convert with static batch-1 shapes")
            shape = [int(d) for d in (tensor.shape if tensor.shape is not None else [])]
            if not is_constant(tensor) and sum(d > 1 for d in shape) > 3:
                reasons.append(f"tensor '{label}' {shape} has more than 3 dimensions larger than 1")

        blocking = [r for r in reasons if not r.startswith(("mapped only when", "already compiled"))]
        if edge and not blocking:
            status = "cpu-edge"
        elif blocking:
            status = "after-split" if split else "unsupported"
            split = True
        else:
            status = "after-split" if split else "edgetpu"
        verdicts.append(OpVerdict(index, name, int(code.version), status, reasons))
    return EdgeTpuReport(str(path), verdicts, problems)
