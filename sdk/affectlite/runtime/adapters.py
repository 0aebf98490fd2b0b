"""Small adapters between numpy and an interpreter's tensors, in the manner of pycoral.

Quantization and dequantization happen here and nowhere else, so every caller feeds floats in
the model card's value range and gets floats back.
"""

from __future__ import annotations

import numpy as np


def input_details(interpreter, index: int = 0) -> dict:
    return interpreter.get_input_details()[index]


def output_details(interpreter, index: int = 0) -> dict:
    return interpreter.get_output_details()[index]


def quantize(values: np.ndarray, details: dict) -> np.ndarray:
    """Floats to the tensor's dtype using its (scale, zero_point); floats pass through."""
    dtype = np.dtype(details["dtype"])
    if dtype.kind == "f":
        return values.astype(dtype, copy=False)
    scale, zero_point = details["quantization"]
    info = np.iinfo(dtype)
    q = np.round(values / scale) + zero_point
    return np.clip(q, info.min, info.max).astype(dtype)


def dequantize(values: np.ndarray, details: dict) -> np.ndarray:
    dtype = np.dtype(details["dtype"])
    if dtype.kind == "f":
        return values.astype(np.float32, copy=False)
    scale, zero_point = details["quantization"]
    return (values.astype(np.float32) - zero_point) * scale


def set_input(interpreter, values: np.ndarray, index: int = 0) -> None:
    details = input_details(interpreter, index)
    interpreter.set_tensor(details["index"], quantize(np.asarray(values), details))


def get_output(interpreter, index: int = 0) -> np.ndarray:
    details = output_details(interpreter, index)
    return dequantize(interpreter.get_tensor(details["index"]), details)


def run(interpreter, values: np.ndarray) -> np.ndarray:
    """One inference on a float input batch of the model's static shape; float output."""
    set_input(interpreter, values)
    interpreter.invoke()
    return get_output(interpreter)


def run_from_blank_state(interpreter, values: np.ndarray) -> np.ndarray:
    """One inference of a recurrent model (the fusion LSTM) on a whole sequence, from a blank state.

    A converted LSTM keeps its hidden and cell state in variable tensors that survive ``invoke()``
    (and ``allocate_tensors()``): without the reset each sequence would start where the previous
    one ended, and the answers drift far from the Keras model's."""
    interpreter.reset_all_variables()
    return run(interpreter, values)
