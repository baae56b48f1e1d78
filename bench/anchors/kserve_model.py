"""A KServe model server for one joblib file, in the style of KServe's sklearnserver with
PREDICT_PROBA=true: V1 protocol, `POST /v1/models/<name>:predict` with {"instances": [[...], ...]}
answered by {"predictions": [[p0, p1, ...], ...]}.

Run: python kserve_model.py --model_name NAME --model_path FILE --http_port P --enable_grpc false

KServe's REST server hard-codes host 0.0.0.0; the benchmark listens on the loopback only, so the
uvicorn configuration it builds is given host 127.0.0.1 (start with --enable_grpc false: the gRPC
server binds every address too).
"""

import argparse

import joblib
import kserve
import uvicorn
from kserve.utils.utils import get_predict_input, get_predict_response


class LoopbackConfig(uvicorn.Config):
    def __init__(self, app, **kwargs):
        super().__init__(app, **(kwargs | {"host": "127.0.0.1"}))


class SKLearnModel(kserve.Model):
    def __init__(self, name: str, model_path: str):
        super().__init__(name)
        self.model_path = model_path
        self.load()

    def load(self) -> bool:
        self._model = joblib.load(self.model_path)
        self.ready = True
        return self.ready

    def predict(self, payload, headers=None):
        instances = get_predict_input(payload)
        return get_predict_response(payload, self._model.predict_proba(instances), self.name)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(parents=[kserve.model_server.parser])
    parser.add_argument("--model_path", required=True)
    args, _ = parser.parse_known_args()
    uvicorn.Config = LoopbackConfig
    kserve.ModelServer().start([SKLearnModel(args.model_name, args.model_path)])
