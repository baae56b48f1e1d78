"""KServe V1 data plane: `/v1/models/<name>` and `/v1/models/<name>:predict`."""

from typing import Any

import numpy as np
from flask import Blueprint, request

from mlmodel_server.batching import BatchResult
from mlmodel_server.errors import InvalidInput, NotFound
from mlmodel_server.http_io import json_response, read_json, served_model
from mlmodel_server.predictor import PlannedPrediction, Predictor

blueprint = Blueprint("v1", __name__)


def model_named(name: str) -> Predictor:
    model = served_model()
    if name != model.identity.name:
        raise NotFound(f"unknown model {name!r}; this server serves {model.identity.name!r}")
    return model


@blueprint.get("/v1/models")
def list_models():
    return json_response({"models": [served_model().identity.name]})


@blueprint.get("/v1/models/<name>")
def model_status(name: str):
    # a model this server serves is loaded: the server listens only once it is
    return json_response({"name": model_named(name).identity.name, "ready": True})


def plan(body: Any, model: Predictor) -> PlannedPrediction:
    """A parsed request body up to its model call: shared by the route and its lean route (lean_routes.py)."""
    if not isinstance(body, dict) or ("instances" not in body and "inputs" not in body):
        raise InvalidInput('expected a JSON object with an "instances" list of rows')
    instances = body["instances"] if "instances" in body else body["inputs"]
    if not isinstance(instances, (list, np.ndarray)):  # an array: rows compiled_json.py decoded
        raise InvalidInput('"instances" must be a list of rows')
    matrix, _ = model.read_rows(instances, model.signature, "instances")
    return PlannedPrediction(matrix, False, predictions_payload)


def predictions_payload(result: BatchResult) -> dict[str, Any]:
    return {"predictions": result.predictions.tolist()}


@blueprint.post("/v1/models/<name>:predict")
def predict(name: str):
    model = model_named(name)
    return json_response(model.answer(plan(read_json(request), model)))
