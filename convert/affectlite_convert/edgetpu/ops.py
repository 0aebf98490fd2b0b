"""What the Edge TPU compiler (version 16) accepts, as data.

Sources (public): Coral's "TensorFlow models on the Edge TPU" page (supported operations and
the tensor rules: 8-bit tensors, static sizes, at most three dimensions larger than 1, one
subgraph) and the google-coral issue trackers, where compiler 16.0.384591198 rejects operator
versions newer than its TFLite registry: e.g. ``CONV_2D`` version 6 from TensorFlow 2.9
(google-coral/edgetpu#631) and ``EXP`` version 2 from TensorFlow 2.16 (google-coral/libedgetpu#71),
with "Didn't find op for builtin opcode ... version ...", or "Operation version not supported"
in the operation log.

The version limits are those of the TFLite op registry the compiler was built with (about
TensorFlow 2.5, mid-2021). A limit here that is too low gives a false alarm, one that is too
high a false pass: when the real compiler is at hand, ``edgetpu-check`` runs it and its log wins.
"""

from __future__ import annotations

#: Builtin op -> highest version compiler 16 accepts.
MAX_VERSION: dict[str, int] = {
    "ADD": 4,
    "AVERAGE_POOL_2D": 3,
    "CONCATENATION": 3,
    "CONV_2D": 5,
    "DEPTHWISE_CONV_2D": 6,
    "DEQUANTIZE": 4,
    "EXPAND_DIMS": 1,
    "FULLY_CONNECTED": 9,
    "HARD_SWISH": 1,
    "L2_NORMALIZATION": 2,
    "LOGISTIC": 3,
    "LSTM": 4,
    "MAX_POOL_2D": 3,
    "MAXIMUM": 4,
    "MEAN": 3,
    "MINIMUM": 4,
    "MUL": 4,
    "PACK": 3,
    "PAD": 3,
    "PADV2": 3,
    "PRELU": 1,
    "QUANTIZE": 2,
    "REDUCE_MAX": 2,
    "REDUCE_MIN": 2,
    "RELU": 2,
    "RELU6": 2,
    "RELU_N1_TO_1": 1,
    "RESHAPE": 1,
    "RESIZE_BILINEAR": 3,
    "RESIZE_NEAREST_NEIGHBOR": 3,
    "RSQRT": 2,
    "SLICE": 4,
    "SOFTMAX": 3,
    "SPACE_TO_DEPTH": 2,
    "SPLIT": 4,
    "SQUARED_DIFFERENCE": 1,
    "SQUEEZE": 1,
    "STRIDED_SLICE": 5,
    "SUB": 4,
    "SUM": 2,
    "TANH": 3,
    "TRANSPOSE": 5,
    "TRANSPOSE_CONV": 3,
    "UNIDIRECTIONAL_SEQUENCE_LSTM": 3,
}

#: Ops that are mapped only under extra conditions, with the condition for the report.
CONDITIONS: dict[str, str] = {
    "LSTM": "unidirectional only",
    "UNIDIRECTIONAL_SEQUENCE_LSTM": "unidirectional; keep the step's feature size small (well under 900)",
    "SOFTMAX": "1-D input (the last axis)",
    "TRANSPOSE": "last axis stays in place",
}

#: Float <-> int8 conversions at the model's edges stay on the CPU without splitting the graph.
EDGE_OPS = {"QUANTIZE", "DEQUANTIZE"}

#: A custom op the compiler itself emits: the model was already compiled.
COMPILED_CUSTOM_OP = "edgetpu-custom-op"

EIGHT_BIT = {"INT8", "UINT8"}
#: Tensor types allowed besides 8-bit activations: bias vectors and some index inputs.
CONSTANT_TYPES = {"INT8", "UINT8", "INT32"}

#: TFLite's integer LSTM keeps its cell state and some of its parameters in 16 bits (the
#: "8x8_16" scheme); those tensors belong to the op, not to the graph between ops. Not checked
#: against the compiler itself (it cannot run here).
LSTM_OPS = {"LSTM", "UNIDIRECTIONAL_SEQUENCE_LSTM"}
LSTM_INTERNAL_TYPES = {"INT16", "INT32"}
