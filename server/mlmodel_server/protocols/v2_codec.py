"""Pure codec for Open Inference Protocol (V2) tensors, JSON and the binary tensor data extension.

Binary extension: the body is a JSON header of `Inference-Header-Content-Length` bytes followed by raw
tensors, in input order, for every input whose parameters carry `binary_data_size`. Fixed-size types are
little-endian row-major; BYTES elements are each a 4-byte little-endian length followed by the bytes.
"""

import math
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlmodel_server.errors import InvalidInput

MAX_ELEMENTS = 50_000_000
MAX_DIMENSIONS = 8

NUMPY_TYPES: dict[str, np.dtype] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
    "BYTES": np.dtype(object),
}
DATATYPES = tuple(NUMPY_TYPES)

Parameters = dict[str, Any]

# The JSON type of every field of a request, checked before any field is used, so that a field of another type is
# refused by name instead of reaching code that assumed its type. Absent and null fields pass here; whether
# they may be left out is the decoder's question (`inputs`, which may not, it checks itself). Parameter values
# are checked where they are read.
REQUEST_FIELDS: dict[str, type] = {"id": str, "parameters": dict, "outputs": list}
INPUT_FIELDS: dict[str, type] = {"name": str, "datatype": str, "shape": list, "parameters": dict}
OUTPUT_FIELDS: dict[str, type] = {"name": str, "parameters": dict}
JSON_TYPE_NAMES: dict[type, str] = {
    str: "a string",
    dict: "an object",
    list: "a list",
    bool: "a boolean",
    int: "a number",
    float: "a number",
    type(None): "null",
}


@dataclass
class Tensor:
    name: str
    datatype: str
    shape: tuple[int, ...]
    data: np.ndarray
    parameters: Parameters = field(default_factory=dict)


@dataclass(frozen=True)
class RequestedOutput:
    name: str
    binary: bool


@dataclass
class InferenceRequest:
    id: str | None
    parameters: Parameters
    inputs: list[Tensor]
    outputs: list[RequestedOutput] | None  # None: the server's default outputs
    binary_outputs: bool


def check_fields(value: dict[str, Any], fields: dict[str, type], where: str) -> None:
    for key, kind in fields.items():
        item = value.get(key)
        if item is not None and not isinstance(item, kind):
            got = JSON_TYPE_NAMES.get(type(item), type(item).__name__)
            raise InvalidInput(f"{where}: {key} must be {JSON_TYPE_NAMES[kind]}, got {got}")


def parameters_of(value: Parameters | None) -> Parameters:
    return {} if value is None else value


def shape_of(value: Any, where: str) -> tuple[int, ...]:
    if not isinstance(value, list) or len(value) > MAX_DIMENSIONS:
        raise InvalidInput(f"{where}: shape must be a list of at most {MAX_DIMENSIONS} non-negative integers")
    for dimension in value:
        if type(dimension) is not int or dimension < 0:
            raise InvalidInput(f"{where}: shape must be a list of non-negative integers")
    if math.prod(value) > MAX_ELEMENTS:
        raise InvalidInput(f"{where}: at most {MAX_ELEMENTS} elements per tensor")
    return tuple(value)


def flatten_strings(data: Any, where: str) -> list[Any]:
    flat: list[Any] = []
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(reversed(item))
        elif isinstance(item, str):
            flat.append(item.encode())
        else:
            raise InvalidInput(f"{where}: BYTES data must be strings")
    return flat


def json_data(data: Any, datatype: str, count: int, where: str) -> np.ndarray:
    if datatype == "BYTES":
        flat = flatten_strings(data, where)
        array = np.empty(len(flat), dtype=object)
        array[:] = flat
    else:
        try:
            array = np.asarray(data)
        except (ValueError, TypeError, OverflowError):
            raise InvalidInput(f"{where}: data must be a (possibly nested) list of {datatype} values") from None
        array = array.reshape(-1)
        kind = array.dtype.kind
        target = NUMPY_TYPES[datatype]
        if datatype == "BOOL":
            if kind != "b" and array.size:
                raise InvalidInput(f"{where}: BOOL data must be true or false")
        elif target.kind in "iu":
            if kind not in "iu" and array.size:
                raise InvalidInput(f"{where}: {datatype} data must be integers")
            if array.size:
                limits = np.iinfo(target)
                if array.min() < limits.min or array.max() > limits.max:
                    raise InvalidInput(f"{where}: a value is out of range for {datatype}")
        elif kind not in "iuf" and array.size:
            raise InvalidInput(f"{where}: {datatype} data must be numbers")
        with np.errstate(all="ignore"):  # an FP16/FP32 overflow becomes inf, which the model input check refuses
            array = array.astype(target)
    if array.size != count:
        raise InvalidInput(f"{where}: shape holds {count} elements but data has {array.size}")
    return array


def binary_bytes_elements(raw: memoryview, count: int, where: str) -> np.ndarray:
    elements = []
    offset = 0
    while offset < len(raw):
        if offset + 4 > len(raw):
            raise InvalidInput(f"{where}: truncated BYTES element length")
        (length,) = struct.unpack_from("<I", raw, offset)
        offset += 4
        if offset + length > len(raw):
            raise InvalidInput(f"{where}: truncated BYTES element")
        elements.append(bytes(raw[offset : offset + length]))
        offset += length
    if len(elements) != count:
        raise InvalidInput(f"{where}: shape holds {count} elements but the binary data has {len(elements)}")
    array = np.empty(count, dtype=object)
    array[:] = elements
    return array


def binary_data(raw: memoryview, datatype: str, count: int, where: str) -> np.ndarray:
    if datatype == "BYTES":
        return binary_bytes_elements(raw, count, where)
    dtype = NUMPY_TYPES[datatype]
    if len(raw) != count * dtype.itemsize:
        raise InvalidInput(
            f"{where}: shape holds {count} {datatype} elements ({count * dtype.itemsize} bytes), "
            f"binary_data_size is {len(raw)}"
        )
    if datatype == "BOOL":
        octets = np.frombuffer(raw, dtype=np.uint8)
        if octets.size and octets.max() > 1:
            raise InvalidInput(f"{where}: BOOL bytes must be 0 or 1")
        return octets.astype(np.bool_)
    return np.frombuffer(raw, dtype=dtype)


def decode_input(value: Any, index: int, binary: memoryview, offset: int) -> tuple[Tensor, int]:
    where = f"inputs[{index}]"
    if not isinstance(value, dict):
        raise InvalidInput(f"{where} must be an object with name, shape, datatype and data")
    check_fields(value, INPUT_FIELDS, where)
    name = value.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidInput(f"{where}: name must be a non-empty string")
    where = f"input {name!r}"
    datatype = value.get("datatype")
    if datatype not in NUMPY_TYPES:
        raise InvalidInput(f"{where}: datatype must be one of {', '.join(DATATYPES)}, got {datatype!r}")
    shape = shape_of(value.get("shape"), where)
    count = math.prod(shape)
    parameters = parameters_of(value.get("parameters"))
    size = parameters.get("binary_data_size")
    if size is not None:
        if type(size) is not int or size < 0:
            raise InvalidInput(f"{where}: binary_data_size must be a non-negative integer")
        if offset + size > len(binary):
            raise InvalidInput(f"{where}: binary_data_size {size} runs past the end of the body")
        data = binary_data(binary[offset : offset + size], datatype, count, where)
        offset += size
    else:
        if "data" not in value:
            raise InvalidInput(f"{where}: data is missing (or give binary_data_size with binary data)")
        data = json_data(value["data"], datatype, count, where)
    return Tensor(name, datatype, shape, data.reshape(shape), parameters), offset


def decode_outputs(value: Any, default_binary: bool) -> list[RequestedOutput] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise InvalidInput("outputs must be a list of objects with a name")
    outputs = []
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise InvalidInput(f"outputs[{index}] must be an object with a name")
        check_fields(item, OUTPUT_FIELDS, f"outputs[{index}]")
        if item.get("name") is None:
            raise InvalidInput(f"outputs[{index}] must be an object with a name")
        parameters = parameters_of(item.get("parameters"))
        binary = parameters.get("binary_data", default_binary)
        if not isinstance(binary, bool):
            raise InvalidInput(f"output {item['name']!r}: binary_data must be true or false")
        outputs.append(RequestedOutput(item["name"], binary))
    return outputs


def decode_request(header: Any, binary: memoryview) -> InferenceRequest:
    if not isinstance(header, dict):
        raise InvalidInput("expected an inference request object with an inputs list")
    check_fields(header, REQUEST_FIELDS, "request")
    request_id = header.get("id")
    parameters = parameters_of(header.get("parameters"))
    binary_outputs = parameters.get("binary_data_output", False)
    if not isinstance(binary_outputs, bool):
        raise InvalidInput("binary_data_output must be true or false")
    raw_inputs = header.get("inputs")
    if not isinstance(raw_inputs, list) or not raw_inputs:
        raise InvalidInput("inputs must be a non-empty list of tensors")
    inputs = []
    offset = 0
    for index, raw in enumerate(raw_inputs):
        tensor, offset = decode_input(raw, index, binary, offset)
        inputs.append(tensor)
    if offset != len(binary):
        raise InvalidInput(f"the body has {len(binary) - offset} bytes of binary data that no input claims")
    return InferenceRequest(
        id=request_id,
        parameters=parameters,
        inputs=inputs,
        outputs=decode_outputs(header.get("outputs"), binary_outputs),
        binary_outputs=binary_outputs,
    )


def datatype_of(array: np.ndarray) -> str:
    kind = array.dtype.kind
    if kind == "b":
        return "BOOL"
    if kind in "iu":
        return f"{'UINT' if kind == 'u' else 'INT'}{array.dtype.itemsize * 8}"
    if kind == "f":
        return {2: "FP16", 4: "FP32"}.get(array.dtype.itemsize, "FP64")
    return "BYTES"


def bytes_element(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


def encode_binary(array: np.ndarray, datatype: str) -> bytes:
    if datatype == "BYTES":
        parts = []
        for value in array.reshape(-1).tolist():
            encoded = bytes_element(value)
            parts.append(struct.pack("<I", len(encoded)))
            parts.append(encoded)
        return b"".join(parts)
    if datatype == "BOOL":
        return np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    return np.ascontiguousarray(array, dtype=NUMPY_TYPES[datatype]).tobytes()


def json_values(array: np.ndarray, datatype: str) -> list[Any]:
    flat = array.reshape(-1).tolist()
    if datatype == "BYTES":
        return [v.decode(errors="replace") if isinstance(v, bytes) else str(v) for v in flat]
    return flat


def encode_output(name: str, array: np.ndarray, binary: bool) -> tuple[dict[str, Any], bytes | None]:
    datatype = datatype_of(array)
    output: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(array.shape)}
    if binary:
        raw = encode_binary(array, datatype)
        output["parameters"] = {"binary_data_size": len(raw)}
        return output, raw
    output["data"] = json_values(array, datatype)
    return output, None
