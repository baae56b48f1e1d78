"""Telling an artifact's format from its name and its first bytes (pure functions of the contract)."""

import pytest

from mlmodel_contract.artifacts import (
    CONTENT_HEAD_BYTES,
    FILE_FORMATS,
    LIGHTGBM,
    ONNX,
    SKOPS,
    XGBOOST,
    artifact_file_name,
    detect_format,
    format_from_content,
    format_from_uri,
)

XGBOOST_JSON = b'{"learner":{"attributes":{"scikit_learn":"{\\"_estimator_type\\": \\"classifier\\"}"},'
XGBOOST_JSON_SPACED = b'  {\n  "learner" : {\n    "attributes": {},'
XGBOOST_UBJSON = b"{L\x00\x00\x00\x00\x00\x00\x00\x07learner{L\x00\x00\x00\x00\x00\x00\x00\nattributes{"
XGBOOST_UBJSON_SHORT_LENGTH = b"{i\x07learner{i\nattributes{}"
LIGHTGBM_TEXT = b"tree\nversion=v4\nnum_class=3\nnum_tree_per_iteration=3\nlabel_index=0\nmax_feature_idx=5\n"
LIGHTGBM_TEXT_CRLF = b"tree\r\nversion=v3\r\nnum_class=1\r\n"
PICKLE = b"\x80\x05\x95\x10\x00\x00\x00\x00\x00\x00\x00\x8c\x07sklearn"
ZIP = b"PK\x03\x04\x14\x00\x00\x00\x08\x00"


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (XGBOOST_JSON, XGBOOST),
        (XGBOOST_JSON_SPACED, XGBOOST),
        (XGBOOST_UBJSON, XGBOOST),
        (XGBOOST_UBJSON_SHORT_LENGTH, XGBOOST),
        (LIGHTGBM_TEXT, LIGHTGBM),
        (LIGHTGBM_TEXT_CRLF, LIGHTGBM),
        (PICKLE, None),  # a pickle must be named, and trusted: never told from its bytes
        (ZIP, None),
        (b'{"file": "model.joblib", "format": "joblib"}', None),  # JSON, but not an XGBoost model
        (b'{"version": [3, 2, 0], "learner": {}}', None),  # XGBoost writes "learner" first
        (b"tree\nsome text\n", None),
        (b"\x08\x08\x12\x08skl2onnx\x1a\x061.20.0", None),  # ONNX has no recognisable start: named by .onnx only
        (b"", None),
    ],
)
def test_format_from_content(head: bytes, expected: str | None) -> None:
    assert format_from_content(head[:CONTENT_HEAD_BYTES]) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("m.json", XGBOOST),
        ("dir/M.UBJ", XGBOOST),
        ("https://h/model.ubj?X-Amz-Signature=abc", XGBOOST),
        ("model.xgboost", XGBOOST),
        ("model.txt", LIGHTGBM),
        ("model.lightgbm", LIGHTGBM),
        ("m.skops", SKOPS),
        ("s3://bucket/team/model.ONNX", ONNX),
    ],
)
def test_new_suffixes(name: str, expected: str) -> None:
    assert format_from_uri(name) == expected


def test_the_suffix_wins_over_the_content() -> None:
    """A named format is the loader's to check (native_models refuses a .json that is no XGBoost model)."""
    assert detect_format("model.joblib", XGBOOST_JSON) == "joblib"
    assert detect_format("model.json", LIGHTGBM_TEXT) == XGBOOST


@pytest.mark.parametrize(
    ("name", "head", "expected"),
    [
        ("s3://bucket/models/latest", XGBOOST_UBJSON, XGBOOST),
        ("https://h/download?id=7", LIGHTGBM_TEXT, LIGHTGBM),
        ("model.bin", XGBOOST_JSON, XGBOOST),
        ("s3://bucket/models/latest", PICKLE, None),
        ("model", b"", None),
    ],
)
def test_content_decides_when_the_name_does_not(name: str, head: bytes, expected: str | None) -> None:
    assert detect_format(name, head) == expected


def test_every_format_is_recognised_under_the_name_fetch_gives_it() -> None:
    for model_format in FILE_FORMATS:
        assert format_from_uri(artifact_file_name(model_format)) == model_format
