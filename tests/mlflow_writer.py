"""Run by the MLflow venv's Python (tests/mlflow_venv.py), not by pytest: write MLflow model directories.

argv[1]: a JSON list of jobs {"flavour", "model" (a joblib file, an .onnx file or a LightGBM text file), "out",
"example" (an .npy file of input rows), "columns" (names for a column-based signature, or null: a tensor one),
"options" (keyword arguments for save_model)}. flavour "pyfunc" saves a custom Python model (no library flavour).
"""

import json
import sys

import joblib
import numpy as np


def save(job: dict) -> None:
    import mlflow.lightgbm
    import mlflow.onnx
    import mlflow.pyfunc
    import mlflow.sklearn
    import mlflow.xgboost
    import pandas as pd
    from mlflow.models import infer_signature

    rows = np.load(job["example"])
    example = pd.DataFrame(rows, columns=job["columns"]) if job.get("columns") else rows
    flavour, options = job["flavour"], job.get("options") or {}
    if flavour == "onnx":
        import onnx

        model = onnx.load(job["model"])
    elif flavour == "lightgbm-booster":
        import lightgbm

        model = lightgbm.Booster(model_file=job["model"])
    elif flavour == "pyfunc":

        class Doubler(mlflow.pyfunc.PythonModel):  # a custom Python model: what the server must refuse
            def predict(self, context, model_input, params=None):
                return model_input * 2

        mlflow.pyfunc.save_model(job["out"], python_model=Doubler())
        return
    else:
        model = joblib.load(job["model"])
    predictions = model.predict(rows) if hasattr(model, "predict") and flavour != "onnx" else None
    signature = infer_signature(example, predictions)
    module = {"lightgbm-booster": mlflow.lightgbm}.get(flavour) or getattr(mlflow, flavour)
    module.save_model(model, job["out"], signature=signature, **options)


if __name__ == "__main__":
    for job in json.loads(open(sys.argv[1]).read()):
        save(job)
