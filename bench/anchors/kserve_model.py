"""A KServe model server for one model file, in the style of KServe's own model servers: V1 protocol,
`POST /v1/models/<name>:predict` with {"instances": [[...], ...]} answered by {"predictions": [...]}.

- sklearn (a joblib file): like sklearnserver with PREDICT_PROBA=true, predict_proba of the estimator.
- xgboost (an XGBoost model file): like xgbserver, a Booster loaded from the file's bytes with nthread 1
  (xgbserver's default), each request's instances made into a DMatrix(nthread=1) for Booster.predict
  (for a binary objective: the positive class's probability per row).
- lightgbm (a LightGBM text model file): like lgbserver, a Booster loaded from the file with nthread 1
  (lgbserver's default), Booster.predict on the instances (get_predict_input with the booster's feature
  names as columns, which only applies to instances given as objects).

KServe's xgbserver and lgbserver are not published as packages, so this file mirrors their load and predict
path with the same KServe SDK (kserve.Model, get_predict_input, get_predict_response).

Run: python kserve_model.py --model_name NAME --model_path FILE --model_kind KIND --http_port P --enable_grpc false

KServe's REST server hard-codes host 0.0.0.0; the benchmark listens on the loopback only, so the
uvicorn configuration it builds is given host 127.0.0.1 (start with --enable_grpc false: the gRPC
server binds every address too).
"""

import argparse

import joblib
import kserve
import uvicorn
from kserve.utils.utils import get_predict_input, get_predict_response

NTHREAD = 1  # xgbserver's and lgbserver's --nthread default
# xgboost and lightgbm are imported by their models only, so the scikit-learn server's memory is what it was


class LoopbackConfig(uvicorn.Config):
    def __init__(self, app, **kwargs):
        super().__init__(app, **(kwargs | {"host": "127.0.0.1"}))


class FileModel(kserve.Model):
    def __init__(self, name: str, model_path: str):
        super().__init__(name)
        self.model_path = model_path
        self.load()

    def load(self) -> bool:
        self._model = self.read()
        self.ready = True
        return self.ready


class SKLearnModel(FileModel):
    def read(self):
        return joblib.load(self.model_path)

    def predict(self, payload, headers=None):
        instances = get_predict_input(payload)
        return get_predict_response(payload, self._model.predict_proba(instances), self.name)


class XGBoostModel(FileModel):
    def read(self):
        import xgboost

        with open(self.model_path, "rb") as file:
            return xgboost.Booster(params={"nthread": NTHREAD}, model_file=bytearray(file.read()))

    def predict(self, payload, headers=None):
        import xgboost

        instances = get_predict_input(payload)
        result = self._model.predict(xgboost.DMatrix(instances, nthread=NTHREAD))
        return get_predict_response(payload, result, self.name)


class LightGBMModel(FileModel):
    def read(self):
        import lightgbm

        return lightgbm.Booster(params={"nthread": NTHREAD}, model_file=self.model_path)

    def predict(self, payload, headers=None):
        instances = get_predict_input(payload, columns=self._model.feature_name())
        return get_predict_response(payload, self._model.predict(instances), self.name)


MODELS = {"sklearn": SKLearnModel, "xgboost": XGBoostModel, "lightgbm": LightGBMModel}

if __name__ == "__main__":
    parser = argparse.ArgumentParser(parents=[kserve.model_server.parser])
    parser.add_argument("--model_path", required=True)
    parser.add_argument("--model_kind", choices=sorted(MODELS), default="sklearn")
    args, _ = parser.parse_known_args()
    uvicorn.Config = LoopbackConfig
    kserve.ModelServer().start([MODELS[args.model_kind](args.model_name, args.model_path)])
