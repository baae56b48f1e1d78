"""The classic tutorial model API (the setup our users come from), written as the tutorial does it:
the model loaded with joblib at start-up, one row per request, predict and predict_proba per call.

Run: MODEL_PATH=model.joblib gunicorn --worker-class gthread classic_app:app
"""

import os

import joblib
import numpy as np
from flask import Flask, jsonify, request

app = Flask(__name__)
model = joblib.load(os.environ.get("MODEL_PATH", "model.joblib"))


@app.route("/health")
def health():
    return jsonify({"status": "healthy"})


@app.route("/predict", methods=["POST"])
def predict():
    try:
        data = request.get_json()
        features = np.array(data["features"]).reshape(1, -1)
        prediction = model.predict(features)[0]
        confidence = model.predict_proba(features)[0].max()
        return jsonify({"prediction": int(prediction), "confidence": float(confidence), "status": "success"})
    except Exception as e:
        return jsonify({"error": str(e)}), 400
