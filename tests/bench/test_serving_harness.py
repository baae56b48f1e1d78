"""The serving benchmark's harness (bench/serving): its model files, the servers it plans and the targets it
reports. No timings are asserted: the benchmark itself measures, on a machine left to it."""

import json
import os
from pathlib import Path

import models
import numpy as np
import pytest
import report
import servers
import venvs
from load import BATCH_C8, SINGLE_C8, Measurement

from mlmodel_contract.artifacts import CONTENT_HEAD_BYTES, LIGHTGBM, XGBOOST, format_from_content
from mlmodel_server.loading import load_model

BOOSTERS = ("xgboost", "lightgbm")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("bench-work")


@pytest.mark.parametrize(("name", "model_format"), [("xgboost", XGBOOST), ("lightgbm", LIGHTGBM)])
def test_booster_models_are_reproducible_native_files_that_our_loader_reads(name, model_format, tmp_path, workdir):
    model = models.build(name, workdir)
    again = models.build(name, tmp_path)
    assert model.path.read_bytes() == again.path.read_bytes()  # trained deterministically
    assert format_from_content(model.path.read_bytes()[:CONTENT_HEAD_BYTES]) == model_format
    assert (model.n_features, len(model.batch)) == (20, models.BATCH_ROWS)

    estimator = load_model(str(model.path), allow_unverified=True).estimator
    _, library_call = models._library_call(model)
    positive = library_call(np.array(model.batch))  # the library's own: the positive class's probability
    np.testing.assert_allclose(estimator.predict_proba(np.array(model.batch))[:, 1], positive, rtol=1e-6)


@pytest.mark.parametrize("name", BOOSTERS)
def test_floors_time_the_library_call_and_our_default_kernels(name, workdir):
    model = models.build(name, workdir)
    found = models.floors(model, cpu=min(os.sched_getaffinity(0)), repeat=1)
    library, ours = found
    assert library.startswith(f"{name} Booster.predict")
    assert ours.startswith("ours, default kernels (")
    for seconds in found.values():
        assert set(seconds) == {"1", str(models.BATCH_ROWS)} and all(s > 0 for s in seconds.values())


@pytest.mark.parametrize("name", BOOSTERS)
def test_the_tutorial_app_is_not_planned_for_booster_files(name, workdir):
    model = models.build(name, workdir)
    assert not servers.serves("classic", model)
    assert all(servers.serves(s, model) for s in servers.ALL_SERVERS if s != "classic")
    assert servers.serves("classic", models.build("forest", workdir))


@pytest.mark.parametrize(
    ("name", "runtime", "outputs"),
    [
        ("forest", "mlserver_sklearn.SKLearnModel", [{"name": "predict_proba"}]),
        ("xgboost", "mlserver_xgboost.XGBoostModel", [{"name": "predict_proba"}]),
        ("lightgbm", "mlserver_lightgbm.LightGBMModel", None),  # its one output is `predict`
    ],
)
def test_mlserver_gets_the_runtime_of_the_models_library(name, runtime, outputs, workdir):
    model = models.build(name, workdir)
    launch = servers.plan("mlserver", model, workdir, 1)
    settings_dir = workdir / "mlserver" / f"mlserver-{name}" / "model"
    settings = json.loads((settings_dir / "model-settings.json").read_text())
    assert settings["implementation"] == runtime
    assert settings["parameters"]["uri"] == str(model.path)
    assert json.loads(launch.batch.body).get("outputs") == outputs


@pytest.mark.parametrize("name", BOOSTERS)
def test_the_kserve_anchor_is_told_the_models_library(name, workdir):
    command = servers.plan("kserve", models.build(name, workdir), workdir, 1).command
    assert command[command.index("--model_kind") + 1] == name


def test_ours_is_planned_with_the_default_settings(workdir):
    model = models.build("forest", workdir)
    commands = {s: servers.plan(s, model, workdir, 1).command for s in servers.ALL_SERVERS if s.startswith("ours")}
    assert "--compiled-kernels" not in commands[servers.OURS] + commands[servers.OURS_GRANIAN]
    assert "--http-server" not in commands[servers.OURS]
    assert commands[servers.OURS_GUNICORN][-2:] == ["--http-server", "gunicorn"]
    assert commands[servers.OURS_LIBRARY][-2:] == ["--compiled-kernels", "false"]


@pytest.mark.parametrize("name", BOOSTERS)
def test_our_server_answers_the_benchs_requests_for_booster_files(name, workdir):
    """The bench's own launch and check against our real server: both request kinds, one prediction per row."""
    launch = servers.plan(servers.OURS, models.build(name, workdir), workdir, 1)
    with servers.running(launch, workdir / "logs" / f"test-{name}.log", start_timeout_s=60):
        servers.check(launch)


def _point(req_per_s: float, rows: int = 1) -> Measurement:
    return Measurement(8, rows, req_per_s, req_per_s * rows, 1.0, 2.0, 0, 1)


def test_booster_targets_compare_the_default_server_with_the_best_anchor():
    results: report.Results = {
        "xgboost": {
            "mlserver": {SINGLE_C8: _point(100), BATCH_C8: _point(50, 100)},
            "kserve": {SINGLE_C8: _point(200), BATCH_C8: _point(40, 100)},
            "floor": {SINGLE_C8: _point(5000)},  # never an anchor
            servers.OURS: {SINGLE_C8: _point(1100), BATCH_C8: _point(200, 100)},
            servers.OURS_LIBRARY: {SINGLE_C8: _point(9000), BATCH_C8: _point(9000, 100)},  # never compared
        }
    }
    found = {t.label: t for t in report.targets(results, {})}
    single = found["xgboost single-c8 req/s vs best anchor"]
    batch = found["xgboost batch-c8 rows/s vs best anchor"]
    assert (single.verdict, single.measured) == ("PASS", "5.50x (1,100 vs kserve 200)")
    assert (batch.verdict, batch.measured) == ("MISS", "4.00x (20,000 vs mlserver 5,000)")
    assert found["lightgbm single-c8 req/s vs best anchor"].verdict == "n/a"


def test_in_process_floors_are_printed_per_call():
    seconds = {
        "lightgbm Booster.predict": {"1": 40e-6, "100": 500e-6},
        "ours, default kernels (x)": {"1": 20e-6, "100": 250e-6},
    }
    text = report.table("lightgbm", {}, {}, seconds)
    assert (
        "in-process lightgbm Booster.predict: 1 row 40.0 us (25,000 calls/s), 100 rows 500.0 us (200,000 rows/s)"
        in text
    )
    assert "in-process ours, default kernels (x): 1 row 20.0 us (50,000 calls/s)" in text


def test_a_venv_installed_partly_without_dependencies_has_a_key_of_its_own():
    plain = venvs.VenvSpec("mlserver", ("mlserver==1.7.1", "mlserver-xgboost==1.7.1"))
    no_deps = venvs.VenvSpec("mlserver", ("mlserver==1.7.1",), no_deps=("mlserver-xgboost==1.7.1",))
    assert plain.key != no_deps.key
    assert no_deps.lines == ("mlserver==1.7.1", "--no-deps mlserver-xgboost==1.7.1")
    mlserver = venvs.anchor_specs()["mlserver"]
    assert "mlserver-xgboost==1.7.1" in mlserver.no_deps
    assert set(venvs.booster_pins()) <= set(mlserver.requirements) & set(venvs.anchor_specs()["kserve"].requirements)
    assert not any(r.startswith("xgboost==") for r in mlserver.requirements)  # the CUDA build stays out
