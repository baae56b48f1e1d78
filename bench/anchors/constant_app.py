"""The floor: the classic app's Flask + gunicorn setup answering every /predict with a constant body,
so it costs the HTTP stack and nothing else.

Run: gunicorn --worker-class gthread constant_app:app
"""

from flask import Flask, jsonify

app = Flask(__name__)
BODY = {"prediction": 0, "confidence": 1.0, "status": "success"}


@app.route("/health")
def health():
    return jsonify({"status": "healthy"})


@app.route("/predict", methods=["POST"])
def predict():
    return jsonify(BODY)
