"""Pure units: the typed columns a DataFrame-fitted estimator declares (signature.py) and the DataFrame built
from JSON rows and V2 column tensors (frames.py)."""

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from mlmodel_server.errors import InvalidInput
from mlmodel_server.frames import rows_to_frame, stack_frames, tensors_to_frame
from mlmodel_server.signature import Column, signature_of

FRAME = pd.DataFrame(
    {
        "city": ["paris", "rome", "oslo", "rome", "paris", "oslo"],
        "age": [31.0, 45.5, 22.0, 60.0, 38.0, 27.0],
        "rooms": [1, 3, 2, 2, 1, 3],
        "owner": [True, False, True, False, False, True],
    }
)
LABELS = np.array([0, 1, 0, 1, 1, 0])


def fitted(columns: ColumnTransformer):
    return make_pipeline(columns, LogisticRegression()).fit(FRAME, LABELS)


def test_column_kinds_come_from_the_encoders():
    pipeline = fitted(
        ColumnTransformer(
            [
                ("categories", OneHotEncoder(handle_unknown="ignore"), ["city", "rooms", "owner"]),
                ("numbers", StandardScaler(), ["age"]),
            ]
        )
    )
    assert signature_of(pipeline).columns == (
        Column("city", "string"),
        Column("age", "number"),
        Column("rooms", "integer"),
        Column("owner", "boolean"),
    )
    assert signature_of(pipeline).takes_frame


def test_an_encoder_that_refuses_unknown_values_gives_its_categories():
    pipeline = fitted(ColumnTransformer([("city", OrdinalEncoder(), ["city"])], remainder="passthrough"))
    assert signature_of(pipeline).columns[0] == Column("city", "string", ("oslo", "paris", "rome"))
    assert signature_of(pipeline).columns[1:] == (
        Column("age", "number"),
        Column("rooms", "number"),  # passed through: nothing says it is an integer
        Column("owner", "number"),
    )


def test_an_imputer_in_front_of_the_encoder_keeps_the_column_a_string():
    imputed = make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore"))
    pipeline = fitted(ColumnTransformer([("city", imputed, ["city"]), ("age", "passthrough", ["age"])]))
    assert signature_of(pipeline).columns[0] == Column("city", "string")


def test_histogram_boosting_on_categorical_dtypes():
    frame = FRAME[["city", "age"]].assign(city=FRAME["city"].astype("category"))
    model = HistGradientBoostingClassifier(categorical_features="from_dtype", max_iter=5).fit(frame, LABELS)
    assert signature_of(model).columns == (Column("city", "string"), Column("age", "number"))


def test_numeric_models_keep_the_float_matrix():
    numeric = make_pipeline(StandardScaler(), LogisticRegression()).fit(FRAME[["age", "rooms"]], LABELS)
    assert signature_of(numeric).feature_names == ("age", "rooms") and signature_of(numeric).columns is None
    encoded_numbers = fitted(ColumnTransformer([("rooms", OneHotEncoder(), ["rooms"])]))
    assert signature_of(encoded_numbers).columns is None  # integers fit a float matrix
    array_fitted = LogisticRegression().fit(FRAME[["age"]].to_numpy(), LABELS)
    assert signature_of(array_fitted).columns is None and not signature_of(array_fitted).takes_frame


@pytest.fixture(scope="module")
def signature():
    pipeline = fitted(
        ColumnTransformer(
            [("c", OneHotEncoder(handle_unknown="ignore"), ["city", "rooms", "owner"])], remainder="passthrough"
        )
    )
    return signature_of(pipeline)


def test_rows_become_a_frame_of_the_fitted_dtypes(signature):
    frame, single = rows_to_frame(
        [{"owner": True, "rooms": 2.0, "age": 3, "city": "rome"}, ["oslo", 1.5, 1, False]], signature, "rows"
    )
    assert not single
    assert list(frame.columns) == ["city", "age", "rooms", "owner"]
    assert [str(t) for t in frame.dtypes] in (
        ["object", "float64", "int64", "bool"],
        ["str", "float64", "int64", "bool"],
    )
    assert frame.to_dict("records") == [
        {"city": "rome", "age": 3.0, "rooms": 2, "owner": True},
        {"city": "oslo", "age": 1.5, "rooms": 1, "owner": False},
    ]
    _, single = rows_to_frame({"owner": True, "rooms": 2, "age": 3, "city": "rome"}, signature, "rows")
    assert single


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([], "expected an object of columns"),
        ("x", "expected an object of columns"),
        ([{"city": "a", "age": 1, "rooms": 1, "owner": True}, 3], "row 1: expected an object of columns or a list"),
        ([{"city": "a", "age": float("nan"), "rooms": 1, "owner": True}], "column 'age': expected a number, the"),
        ([{"city": "a", "age": 1, "rooms": 2**70, "owner": True}], "column 'rooms': expected an integer, got"),
        ([{"city": None, "age": 1, "rooms": 1, "owner": True}], "column 'city': expected a string, null is not"),
        ([{"city": ["a"], "age": 1, "rooms": 1, "owner": True}], "column 'city': expected a string, got a list"),
    ],
)
def test_bad_rows(signature, value, message):
    with pytest.raises(InvalidInput, match=message.replace("(", r"\(")):
        rows_to_frame(value, signature, "rows")


def test_column_tensors_become_a_frame(signature):
    tensors = {
        "city": ("BYTES", np.array([b"rome", b"oslo"], dtype=object)),
        "age": ("FP32", np.array([[1.5], [2.0]], dtype=np.float32)),
        "rooms": ("UINT8", np.array([1, 2], dtype=np.uint8)),
        "owner": ("BOOL", np.array([True, False])),
    }
    frame = tensors_to_frame(tensors, signature)
    assert frame.to_dict("records") == [
        {"city": "rome", "age": 1.5, "rooms": 1, "owner": True},
        {"city": "oslo", "age": 2.0, "rooms": 2, "owner": False},
    ]
    assert stack_frames([frame, frame]).shape == (4, 4)
    with pytest.raises(InvalidInput, match="input 'age': row 1: values must be finite"):
        tensors_to_frame({**tensors, "age": ("FP64", np.array([1.0, np.inf]))}, signature)
    with pytest.raises(InvalidInput, match="out of range for INT64"):
        tensors_to_frame({**tensors, "rooms": ("UINT64", np.array([1, 2**64 - 1], dtype=np.uint64))}, signature)
    with pytest.raises(InvalidInput, match="expected at least one row"):
        empty = {name: (datatype, data[:0]) for name, (datatype, data) in tensors.items()}
        tensors_to_frame(empty, signature)


def test_an_onnx_graph_of_numeric_columns_takes_the_float_matrix(tmp_path):
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import DoubleTensorType, Int64TensorType
    from sklearn.linear_model import Ridge

    from mlmodel_server.app import AppOptions, create_app
    from mlmodel_server.onnx_models import load_onnx
    from mlmodel_server.predictor import ModelIdentity, Predictor

    frame = FRAME[["age", "rooms"]]
    ridge = make_pipeline(ColumnTransformer([("n", StandardScaler(), ["age", "rooms"])]), Ridge()).fit(frame, LABELS)
    types = [("age", DoubleTensorType([None, 1])), ("rooms", Int64TensorType([None, 1]))]
    path = tmp_path / "ridge.onnx"
    path.write_bytes(convert_sklearn(ridge, initial_types=types, target_opset=18).SerializeToString())
    predictor = Predictor(load_onnx(path), ModelIdentity("r", "", "", "onnx"))
    assert predictor.signature.columns == (Column("age", "number"), Column("rooms", "integer"))
    assert not predictor.signature.takes_frame
    client = create_app(predictor, AppOptions()).test_client()
    served = client.post("/predict", json={"instances": frame.to_numpy().tolist()}).json["prediction"]
    np.testing.assert_allclose(served, ridge.predict(frame), rtol=1e-6)
    assert client.get("/v2/models/r").json["inputs"] == [{"name": "input-0", "datatype": "FP64", "shape": [-1, 2]}]
