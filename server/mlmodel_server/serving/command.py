"""`mlmodel-server serve`: parse settings, load the model (exit 20/21/22 on failure), start the HTTP server."""

import logging
import os
import shutil
import tempfile

from mlmodel_contract.pod import PROMETHEUS_MULTIPROC_DIR_ENV
from mlmodel_contract.spec_defaults import SHARED_CALL_MICROSECONDS
from mlmodel_server import logs
from mlmodel_server.loading import LoadFailed
from mlmodel_server.settings import ServeSettings, parse_settings
from mlmodel_server.termination import Failure, report

log = logging.getLogger("mlmodel_server.serve")

DEFAULT_METRICS_DIR_PREFIX = "mlmodel-metrics-"


def metrics_dir() -> tuple[str, bool]:
    """The multiprocess directory, and whether this process made it (and so removes it at exit)."""
    configured = os.environ.get(PROMETHEUS_MULTIPROC_DIR_ENV)
    if configured:
        return configured, False
    return tempfile.mkdtemp(prefix=DEFAULT_METRICS_DIR_PREFIX), True


def build_wsgi_app(settings: ServeSettings, environment: dict[str, str]):
    # Imported here, after the metrics directory exists: see mlmodel_server.metrics.
    import sklearn
    from threadpoolctl import threadpool_info

    from mlmodel_server import metrics
    from mlmodel_server.app import AppOptions, create_app
    from mlmodel_server.auth import load_api_key
    from mlmodel_server.loading import load_model
    from mlmodel_server.predictor import ModelIdentity, Predictor, quiet_feature_name_warnings

    api_key = load_api_key(settings.api_key_file, environment)
    loaded = load_model(
        settings.model_path,
        allow_unverified=settings.allow_unverified,
        sklearn_version_policy=settings.sklearn_version_policy,
        skops_trusted_types=settings.skops_trusted_types,
    )
    identity = ModelIdentity(
        settings.name,
        settings.version,
        loaded.sha256,
        loaded.artifact.served_format,
        recorded_versions=loaded.recorded_versions,
        runtime_versions=loaded.runtime_versions,
        version_mismatches=loaded.version_mismatches,
    )
    quiet_feature_name_warnings()
    predictor = Predictor(
        loaded.estimator,
        identity,
        settings.max_batch_rows,
        on_batch=metrics.observe_batch,
        compiled_kernels=settings.compiled_kernels,
        signature=loaded.signature,
    )
    metrics.record_model(
        settings.name,
        settings.version,
        loaded.sha256,
        loaded.artifact.served_format,
        sklearn.__version__,
        predictor.kernels.fast_kernel,
        loaded.load_seconds,
    )
    metrics.record_library_versions(
        settings.name, loaded.recorded_versions, loaded.runtime_versions, loaded.version_mismatches
    )
    log.info(
        "Loaded model",
        extra={
            "model": settings.name,
            "version": settings.version,
            "file": str(loaded.artifact.path),
            "format": loaded.artifact.served_format,
            "sha256": loaded.sha256,
            "verified": loaded.artifact.verified,
            "load_seconds": round(loaded.load_seconds, 4),
            "fast_path": predictor.kernels.fast_kernel,
            "native_threads": {pool["internal_api"]: pool["num_threads"] for pool in threadpool_info()},
            "recorded_versions": loaded.recorded_versions,  # the artifact's own record, an MLmodel file's too
            **predictor.signature.describe(),
        },
    )
    options = AppOptions(settings.max_request_bytes, api_key, settings.access_log, settings.access_log_sample_percent)
    return create_app(predictor, options), request_threads(settings, predictor)


def request_threads(settings: ServeSettings, predictor) -> int:
    """How many threads run requests in a worker; 0: the eventloop worker's own thread, where the requests of
    one turn of its loop share the model's calls."""
    if settings.http_server != "eventloop":
        return settings.threads
    seconds = predictor.one_row_call_seconds()
    threads = settings.threads if seconds is None or seconds * 1e6 >= SHARED_CALL_MICROSECONDS else 0
    if threads == 0:
        predictor.serve_from_one_thread()
    log.info(
        "Requests run in %s",
        f"{threads} threads per worker (micro-batching)"
        if threads
        else "each worker's event loop (requests that arrive together share calls)",
        extra={"one_row_call_seconds": None if seconds is None else round(seconds, 6), "request_threads": threads},
    )
    return threads


def main(argv: list[str]) -> int:
    try:
        settings = parse_settings(argv)
    except SystemExit as exit_:  # argparse: usage errors are exit 2, --help is 0
        return int(exit_.code or 0)
    logs.configure(settings.log_level)
    from mlmodel_server.metrics_dir import prepare_multiprocess_dir

    directory, owned = metrics_dir()
    prepare_multiprocess_dir(directory)
    try:
        wsgi_app, threads = build_wsgi_app(settings, dict(os.environ))
    except Exception as error:
        if owned:
            shutil.rmtree(directory, ignore_errors=True)
        if not isinstance(error, Failure):  # anything unforeseen while loading is still a one-line load failure
            log.exception("Failed to load the model")
            error = LoadFailed(f"cannot serve the model: {type(error).__name__}: {error}")
        return report(error, settings.termination_message_path)
    remove_at_exit = directory if owned else None
    if settings.http_server == "granian":
        from mlmodel_server.serving import granian_app

        granian_app.serve(wsgi_app, settings, remove_at_exit)
        return 0
    from mlmodel_server.serving.gunicorn_app import ModelServerApplication, gunicorn_options

    ModelServerApplication(wsgi_app, gunicorn_options(settings, threads, remove_at_exit)).run()
    return 0
