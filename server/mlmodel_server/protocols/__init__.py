"""HTTP front-ends over the Predictor core: classic /predict, KServe V1, Open Inference Protocol V2."""
