"""The classic hand-made Flask contract users come from: `{"features": [...]}` → prediction + confidence."""

from typing import Any

from flask import Blueprint, request

from mlmodel_server.batching import BatchResult
from mlmodel_server.errors import InvalidInput
from mlmodel_server.http_io import json_response, read_json, served_model
from mlmodel_server.predictor import PlannedPrediction, Predictor

blueprint = Blueprint("classic", __name__)


def request_rows(body: Any, model: Predictor) -> tuple[Any, bool]:
    if not isinstance(body, dict):
        raise InvalidInput('expected a JSON object such as {"features": [5.1, 3.5, 1.4, 0.2]}')
    if "instances" in body:
        matrix, _ = model.read_rows(body["instances"], model.signature, "instances")
        return matrix, False
    if "features" in body:
        return model.read_rows(body["features"], model.signature, "features")
    raise InvalidInput('expected a "features" (one row or a list of rows) or "instances" (a list of rows) field')


def plan(body: Any, model: Predictor) -> PlannedPrediction:
    """A parsed request body up to its model call: shared by the route and its lean route (lean_routes.py)."""
    matrix, single = request_rows(body, model)

    def answer(result: BatchResult) -> dict[str, Any]:
        predictions = result.predictions.tolist()
        response: dict[str, Any] = {"prediction": predictions[0] if single else predictions}
        if result.probabilities is not None:
            confidences = result.probabilities.max(axis=1).tolist()
            response["confidence"] = confidences[0] if single else confidences
        response["status"] = "success"
        return response

    return PlannedPrediction(matrix, model.signature.has_proba, answer)


@blueprint.post("/predict")
def predict():
    model = served_model()
    return json_response(model.answer(plan(read_json(request), model)))
