"""compiled_json.py: numeric rows decoded straight into a matrix, bit for bit what orjson and numpy make of them,
and everything else left to orjson."""

import json

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlmodel_server.compiled_json import SMALL_BODY_BYTES, rows_decoder


@pytest.fixture(scope="module")
def decode():
    return rows_decoder(small_body_bytes=0)  # every body the scan can read, however short


def test_short_bodies_go_to_orjson_by_default():
    """A few rows decode faster through orjson than through a ctypes call: the scan starts at SMALL_BODY_BYTES."""
    short = b'{"features": [5.1, 3.5, 1.4, 0.2]}'
    assert rows_decoder()(short) == {"features": [5.1, 3.5, 1.4, 0.2]}
    rows = b'{"instances": [' + b",".join([b"[1.5, 2.25, -3]"] * 100) + b"]}"
    assert len(rows) >= SMALL_BODY_BYTES
    (array,) = rows_decoder()(rows).values()
    assert array.shape == (100, 3) and array.tobytes() == np.array([[1.5, 2.25, -3.0]] * 100).tobytes()


def reference_matrix(document: dict, key: str) -> np.ndarray:
    """What the orjson path hands the estimator: inputs.numeric_matrix's np.asarray, then float64."""
    return np.asarray(document[key]).astype(np.float64)


def assert_decodes_like_orjson(decode, body: bytes) -> bool:
    """True when the compiled path decoded the body (and so must agree with orjson bit for bit)."""
    try:
        expected = orjson.loads(body)
    except orjson.JSONDecodeError:
        with pytest.raises(orjson.JSONDecodeError):
            decode(body)
        return False
    decoded = decode(body)
    arrays = (
        {key: value for key, value in decoded.items() if isinstance(value, np.ndarray)}
        if isinstance(decoded, dict)
        else {}
    )
    if not arrays:
        assert decoded == expected
        return False
    ((key, array),) = arrays.items()
    assert decoded.keys() == expected.keys() == {key}
    reference = reference_matrix(expected, key)
    assert array.dtype == np.float64 and array.shape == reference.shape
    assert array.tobytes() == reference.tobytes()  # bits: -0.0 and the last ulp count
    return True


@pytest.mark.parametrize(
    ("body", "rows"),
    [
        (b'{"features": [5.1, 3.5, 1.4, 0.2]}', [5.1, 3.5, 1.4, 0.2]),
        (b'{"features":[[5.1,3.5],[6.7,3.0]]}', [[5.1, 3.5], [6.7, 3.0]]),
        (b' {\n "instances" :\t[ [ 1 , -2 ] , [3,4]\r] } \n', [[1.0, -2.0], [3.0, 4.0]]),
        (b'{"instances": [[-0, -0.0, 0e5, -0E-3]]}', [[0.0, -0.0, 0.0, -0.0]]),  # the integer -0 is 0
        (
            b'{"instances": [[9007199254740992, 1e22, 1.5e-21, 123456789012345.6]]}',
            [[9007199254740992.0, 1e22, 1.5e-21, 123456789012345.6]],
        ),
        (b'{"features": [0.1, 0.123456789012345, 0.000]}', [0.1, 0.123456789012345, 0.0]),
    ],
)
def test_numeric_rows_are_decoded_by_the_compiled_path(decode, body, rows):
    assert assert_decodes_like_orjson(decode, body)
    (array,) = decode(body).values()
    assert array.tobytes() == np.array(rows, dtype=np.float64).tobytes()


@pytest.mark.parametrize(
    "body",
    [
        b'{"instances": [[9007199254740993]]}',  # more than 2^53: not exact as m x 10^e
        b'{"instances": [[1e23]]}',  # 10^23 is not an exact double
        b'{"instances": [[0.12345678901234567]]}',  # a random double's 17-digit repr
        b'{"instances": [[1, 2], [3]]}',
        b'{"instances": [[]]}',
        b'{"instances": []}',
        b'{"features": [[1], 2]}',
        b'{"features": [1, "2"]}',
        b'{"features": [1, true]}',
        b'{"features": [1, null]}',
        b'{"features": [[1, [2]]]}',
        b'{"inputs": [[1, 2]]}',
        b'{"instances": [[1]], "id": 3}',
        b'{"instances": [[1]], "instances": [[2]]}',
        b'{"\\u0069nstances": [[1]]}',
        b'{"instances": [[1]]}x',
        b'{"instances": {"a": 1}}',
        b"[[1, 2]]",
        b"[]",
        b"7",
        b'{"instances": [[1.0]]',
        b'{"instances": [[01]]}',
        b'{"instances": [[1.]]}',
        b'{"instances": [[.5]]}',
        b'{"instances": [[+1]]}',
        b'{"instances": [[1e]]}',
        b'{"instances": [[NaN]]}',
        b'{"instances": [[Infinity]]}',
        b'{"instances": [[1e400]]}',
        b'{"instances": [[1,]]}',
        b'{"instances": [[1 2]]}',
        b"",
        b"\xef\xbb\xbf{}",
    ],
)
def test_anything_else_is_left_to_orjson(decode, body):
    assert not assert_decodes_like_orjson(decode, body)


SPACE = st.sampled_from(["", "", " ", "\n", "\t", "\r\n"])
JSON_NUMBER = st.from_regex(r"-?(0|[1-9][0-9]{0,18})(\.[0-9]{1,18})?([eE][+-]?[0-9]{1,3})?", fullmatch=True)
NUMBER = st.one_of(
    JSON_NUMBER,
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.tuples(st.floats(-1e6, 1e6), st.integers(1, 17)).map(lambda p: f"{p[0]:.{p[1]}g}"),
    st.integers(-(2**64), 2**64).map(str),
)
TOKEN = st.one_of(NUMBER, NUMBER, NUMBER, st.sampled_from(["01", "1.", ".5", "+1", "NaN", '"1"', "true", "null", "-"]))


@st.composite
def bodies(draw) -> bytes:
    space = lambda: draw(SPACE)  # noqa: E731
    width = draw(st.integers(1, 5))

    def row() -> str:
        values = (
            draw(st.lists(TOKEN, min_size=width, max_size=width))
            if draw(st.integers(0, 9))
            else draw(st.lists(TOKEN, max_size=6))
        )  # now and then a ragged or empty row
        return "[" + ",".join(space() + value + space() for value in values) + "]"

    if draw(st.booleans()):
        value = "[" + ",".join(space() + row() + space() for _ in range(draw(st.integers(1, 4)))) + "]"
    else:
        value = row()
    key = draw(st.sampled_from(["instances", "features", "features", "inputs"]))
    extra = draw(st.sampled_from(["", "", "", ', "id": 1', "}"]))
    return f'{space()}{{{space()}"{key}"{space()}:{space()}{value}{extra}{space()}}}{space()}'.encode()


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies())
def test_generated_bodies_decode_exactly_like_orjson(decode, body):
    assert_decodes_like_orjson(decode, body)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(
        st.lists(st.floats(-1e9, 1e9).map(lambda x: round(x, 6)), min_size=3, max_size=3), min_size=1, max_size=20
    )
)
def test_numbers_of_up_to_fifteen_digits_take_the_compiled_path(decode, rows):
    body = json.dumps({"instances": rows}).encode()
    compiled = assert_decodes_like_orjson(decode, body)
    if all(len(repr(abs(v)).split("e")[0].replace(".", "").lstrip("0")) <= 15 for row in rows for v in row):
        assert compiled


def test_only_a_compiled_model_brings_the_compiled_decoder():
    """A model the compiled tree walk does not serve keeps orjson (the decoder's shapes are the walk's inputs)."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    from mlmodel_server.app import AppOptions, create_app
    from mlmodel_server.predictor import ModelIdentity, Predictor

    X, y = load_iris(return_X_y=True)
    predictor = Predictor(
        LogisticRegression(max_iter=500).fit(X, y), ModelIdentity("m", "", "", "joblib"), compiled_kernels=True
    )
    assert not predictor.kernels.compiled
    assert create_app(predictor, AppOptions()).wsgi_app._pipeline.decode is orjson.loads
