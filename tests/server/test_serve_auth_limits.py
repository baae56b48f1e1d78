"""The optional API key and the request-size limit."""

import pytest

KEY = "s3cret-key"
ROW = {"features": [5.1, 3.5, 1.4, 0.2]}


@pytest.fixture(scope="module")
def guarded_server(server_factory, models, tmp_path_factory):
    key_file = tmp_path_factory.mktemp("secret") / "api-key"
    key_file.write_text(KEY + "\n")  # a mounted Secret often ends with a newline
    return server_factory(
        models["iris"], "--name", "iris", "--api-key-file", str(key_file), "--max-request-bytes", "2000"
    )


def test_inference_needs_the_key(guarded_server, http):
    url = guarded_server.url
    missing = http.post(url + "/predict", json=ROW)
    assert missing.status_code == 401 and missing.headers["WWW-Authenticate"] == "Bearer"
    assert "API key" in missing.json()["error"]
    assert http.post(url + "/predict", json=ROW, headers={"X-API-Key": "wrong"}).status_code == 401
    assert http.post(url + "/predict", json=ROW, headers={"Authorization": "Basic " + KEY}).status_code == 401
    assert http.post(url + "/predict", json=ROW, headers={"X-API-Key": KEY}).status_code == 200
    assert http.post(url + "/predict", json=ROW, headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
    assert http.get(url + "/v2/models/iris", headers={"X-API-Key": "nope"}).status_code == 401


@pytest.mark.parametrize(
    "path", ["/health", "/ready", "/metrics", "/v2/health/live", "/v2/health/ready", "/openapi.json"]
)
def test_probes_and_metrics_stay_open(guarded_server, http, path):
    assert http.get(guarded_server.url + path).status_code == 200


def test_key_from_environment(server_factory, models, http):
    server = server_factory(models["iris"], "--name", "iris", env={"MLMODEL_API_KEY": "from-env"})
    assert http.post(server.url + "/predict", json=ROW).status_code == 401
    assert http.post(server.url + "/predict", json=ROW, headers={"X-API-Key": "from-env"}).status_code == 200


def test_body_over_the_limit_is_413(guarded_server, http):
    body = {"instances": [[5.1, 3.5, 1.4, 0.2]] * 200}  # about 4 KB
    response = http.post(guarded_server.url + "/predict", json=body, headers={"X-API-Key": KEY})
    assert response.status_code == 413
    assert "exceeds the limit of 2000" in response.json()["error"]


def test_chunked_body_over_the_limit_is_413(guarded_server, http):
    def chunks():
        yield b'{"instances": ['
        for _ in range(300):
            yield b"[5.1, 3.5, 1.4, 0.2],"
        yield b"[1, 2, 3, 4]]}"

    response = http.post(
        guarded_server.url + "/predict", data=chunks(), headers={"X-API-Key": KEY, "Content-Type": "application/json"}
    )
    assert response.status_code == 413
