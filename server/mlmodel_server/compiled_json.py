"""Request bodies of numeric rows decoded by compiled code, straight into a float64 matrix.

orjson makes a Python float for every number and a list for every row, and numpy then walks those lists to
build the matrix: for 100 rows of 20 features that is ~90 µs, where the compiled walk of a 100-tree forest
over those rows takes ~150 µs. This decoder reads the shapes the classic and V1 routes take,
`{"instances": [[...], ...]}` and `{"features": [...]}` or `{"features": [[...], ...]}`, in one pass over
the bytes and writes the numbers into an array (~30 µs). The routes receive `{key: array}` in place of the
lists (inputs.rows_to_matrix takes either).

It changes no result and no error, only the speed. A number is decoded here only when the result is the
correctly rounded double that orjson (and Python's float()) gives for sure: its digits, read as one integer
m, are at most 2^53 and its decimal exponent e is within ±22, so m and 10^|e| are exact doubles and m × 10^e
(or m / 10^-e) is a single correctly rounded operation (Clinger's fast path). That covers numbers of up to
15 significant digits, the way clients usually write features. Anything else, a longer number (the 17-digit
repr of a random double), another key or shape, an empty or ragged row, a string, malformed JSON, makes it
give up, and the body goes to orjson and the usual validation, which also writes every error message.
Integers keep JSON's meaning: `-0` is the integer 0, so +0.0 as orjson and numpy make it.

Compiled by numba, used only when the server already compiles its model (a forest with compiled kernels):
numba costs ~130 MiB, which a faster decoding alone would not be worth.
"""

from collections.abc import Callable
from functools import cache
from typing import Any

import numpy as np
import orjson

KEYS = ("instances", "features")
MAX_EXACT_MANTISSA = 2**53
MAX_EXACT_POWER = 22
POWERS_OF_TEN = np.array([float(10**k) for k in range(MAX_EXACT_POWER + 1)])  # all exact doubles
# What the compiled scan returns in `outcome` when it gives up: the body goes to orjson.
GAVE_UP = -1
FLAT, NESTED = 0, 1


@cache
def compiled_scan() -> Callable[..., tuple[int, int, int, int]]:
    import numba

    instances_key, features_key = (np.frombuffer(key.encode(), dtype=np.uint8) for key in KEYS)

    @numba.njit
    def at(text, i):  # pragma: no cover (machine code)
        return text[np.uint64(i)]  # unsigned: numba checks a signed index for wrap-around, byte by byte

    @numba.njit
    def is_space(byte):  # pragma: no cover (machine code)
        return byte == 32 or byte == 10 or byte == 13 or byte == 9

    @numba.njit
    def skip_space(text, i):  # pragma: no cover (machine code)
        while i < text.shape[0] and is_space(at(text, i)):
            i += 1
        return i

    @numba.njit
    def is_digit(text, i):  # pragma: no cover (machine code)
        return i < text.shape[0] and 48 <= at(text, i) <= 57

    @numba.njit
    def number(text, i, out, count):  # pragma: no cover (machine code)
        """Writes out[count]; returns the index after the number, or -1 to give up."""
        negative = at(text, i) == 45
        if negative:
            i += 1
        if not is_digit(text, i):
            return -1
        mantissa = np.uint64(0)
        if at(text, i) == 48:
            i += 1
            if is_digit(text, i):  # a leading zero: not JSON
                return -1
        else:
            while is_digit(text, i):
                mantissa = mantissa * np.uint64(10) + np.uint64(at(text, i) - 48)
                if mantissa > np.uint64(MAX_EXACT_MANTISSA):  # compared as uint64, not as doubles
                    return -1
                i += 1
        integer = True
        exponent = 0
        if i < text.shape[0] and at(text, i) == 46:  # '.'
            integer = False
            i += 1
            if not is_digit(text, i):
                return -1
            while is_digit(text, i):
                mantissa = mantissa * np.uint64(10) + np.uint64(at(text, i) - 48)
                if mantissa > np.uint64(MAX_EXACT_MANTISSA):  # compared as uint64, not as doubles
                    return -1
                exponent -= 1
                i += 1
        if i < text.shape[0] and (at(text, i) == 101 or at(text, i) == 69):  # 'e' or 'E'
            integer = False
            i += 1
            exponent_sign = 1
            if i < text.shape[0] and (at(text, i) == 43 or at(text, i) == 45):
                exponent_sign = 1 if at(text, i) == 43 else -1
                i += 1
            if not is_digit(text, i):
                return -1
            written = 0
            while is_digit(text, i):
                written = min(written * 10 + (at(text, i) - 48), 10_000)
                i += 1
            exponent += exponent_sign * written
        if mantissa == 0:
            value = 0.0
        elif exponent > MAX_EXACT_POWER or exponent < -MAX_EXACT_POWER:
            return -1
        elif exponent >= 0:
            value = float(mantissa) * POWERS_OF_TEN[exponent]
        else:
            value = float(mantissa) / POWERS_OF_TEN[-exponent]
        out[count] = -value if negative and not (integer and mantissa == 0) else value
        return i

    @numba.njit
    def numbers(text, i, out, count):  # pragma: no cover (machine code)
        """After a '[': numbers up to the matching ']'. Returns (index after ']', numbers read) or i = -1."""
        start = count
        while True:
            i = skip_space(text, i)
            if i >= text.shape[0]:
                return -1, 0
            i = number(text, i, out, count)
            if i < 0:
                return -1, 0
            count += 1
            i = skip_space(text, i)
            if i >= text.shape[0]:
                return -1, 0
            if at(text, i) == 93:  # ']'
                return i + 1, count - start
            if at(text, i) != 44:  # ','
                return -1, 0
            i += 1

    @numba.njit
    def key_at(text, i, key):  # pragma: no cover (machine code)
        end = i + key.shape[0]
        if end >= text.shape[0] or at(text, end) != 34:  # the closing '"'
            return False
        for k in range(key.shape[0]):  # noqa: SIM110 (numba compiles loops, not generator expressions)
            if at(text, i + k) != key[k]:
                return False
        return True

    @numba.njit
    def scan(text, out):  # pragma: no cover (machine code)
        """→ (outcome: FLAT, NESTED or GAVE_UP, key index, rows, columns)."""
        i = skip_space(text, 0)
        if i >= text.shape[0] or at(text, i) != 123:  # '{'
            return GAVE_UP, 0, 0, 0
        i = skip_space(text, i + 1)
        if i >= text.shape[0] or at(text, i) != 34:  # '"'
            return GAVE_UP, 0, 0, 0
        if key_at(text, i + 1, instances_key):
            key, i = 0, i + 2 + instances_key.shape[0]
        elif key_at(text, i + 1, features_key):
            key, i = 1, i + 2 + features_key.shape[0]
        else:
            return GAVE_UP, 0, 0, 0
        i = skip_space(text, i)
        if i >= text.shape[0] or at(text, i) != 58:  # ':'
            return GAVE_UP, 0, 0, 0
        i = skip_space(text, i + 1)
        if i >= text.shape[0] or at(text, i) != 91:  # '['
            return GAVE_UP, 0, 0, 0
        i = skip_space(text, i + 1)
        if i >= text.shape[0]:
            return GAVE_UP, 0, 0, 0
        if at(text, i) != 91:
            i, columns = numbers(text, i, out, 0)
            rows, outcome = 1, FLAT
        else:
            rows, columns, outcome = 0, 0, NESTED
            while True:
                i, read = numbers(text, i + 1, out, rows * columns)
                if i < 0 or (rows > 0 and read != columns):
                    return GAVE_UP, 0, 0, 0
                rows, columns = rows + 1, read
                i = skip_space(text, i)
                if i >= text.shape[0]:
                    return GAVE_UP, 0, 0, 0
                if at(text, i) == 93:  # ']': the last row
                    i += 1
                    break
                if at(text, i) != 44:
                    return GAVE_UP, 0, 0, 0
                i = skip_space(text, i + 1)
                if i >= text.shape[0] or at(text, i) != 91:
                    return GAVE_UP, 0, 0, 0
        if i < 0:
            return GAVE_UP, 0, 0, 0
        i = skip_space(text, i)
        if i >= text.shape[0] or at(text, i) != 125:  # '}'
            return GAVE_UP, 0, 0, 0
        if skip_space(text, i + 1) != text.shape[0]:
            return GAVE_UP, 0, 0, 0
        return outcome, key, rows, columns

    return scan


def rows_decoder() -> Callable[[bytes], Any]:
    """A drop-in for orjson.loads on request bodies: `{key: float64 array}` for numeric rows, orjson otherwise."""
    scan = compiled_scan()
    scan(np.frombuffer(b'{"features":[[1.5]]}', dtype=np.uint8), np.empty(8))  # compile now, in the master

    def decode(body: bytes) -> Any:
        text = np.frombuffer(body, dtype=np.uint8)
        out = np.empty(len(body) // 2 + 1)  # every number takes at least one byte and a separator
        outcome, key, rows, columns = scan(text, out)
        if outcome == GAVE_UP:
            return orjson.loads(body)
        values = out[: rows * columns]
        return {KEYS[key]: values if outcome == FLAT else values.reshape(rows, columns)}

    return decode
