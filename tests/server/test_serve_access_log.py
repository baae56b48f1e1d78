"""The access log over a real socket: every error logged, successes sampled evenly, probes and scrapes never."""

import requests

ROW = {"features": [5.1, 3.5, 1.4, 0.2]}


def access_entries(server) -> list[dict]:
    return [entry for entry in server.log_entries() if entry.get("logger") == "mlmodel_server.access"]


def test_sampled_access_log_keeps_errors_and_leaves_out_probes(server_factory, models):
    server = server_factory(models["iris"], "--name", "iris", "--access-log", "--access-log-sample-percent", "10")
    with requests.Session() as session:
        for _ in range(3):
            for probe in ("/health", "/ready", "/metrics", "/v2/health/live", "/v2/health/ready"):
                assert session.get(server.url + probe).status_code == 200
        assert [session.post(server.url + "/predict", json=ROW).status_code for _ in range(40)] == [200] * 40
        assert [session.post(server.url + "/predict", json={"features": [1]}).status_code for _ in range(3)] == [
            400
        ] * 3
        assert session.get(server.url + "/no/such/route").status_code == 404
    entries = access_entries(server)
    assert not [
        e for e in entries if e["path"] in ("/health", "/ready", "/metrics") or e["path"].startswith("/v2/health")
    ]
    by_status = [(e["path"], e["status"]) for e in entries]
    assert by_status.count(("/predict", 200)) == 4, by_status  # every tenth of 40
    assert by_status.count(("/predict", 400)) == 3
    assert by_status.count(("/no/such/route", 404)) == 1
    assert all(e["request_id"] and e["method"] in ("GET", "POST") for e in entries)


def test_unsampled_access_log_has_a_line_per_request(iris_server):
    before = len([e for e in access_entries(iris_server) if e["path"] == "/predict"])
    with requests.Session() as session:
        assert [session.post(iris_server.url + "/predict", json=ROW).status_code for _ in range(7)] == [200] * 7
        session.get(iris_server.url + "/health")
    after = [e for e in access_entries(iris_server) if e["path"] == "/predict"]
    assert len(after) - before == 7
