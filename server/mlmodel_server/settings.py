"""The `serve` role's settings, each declared once: flag, env twin (docs/pod-contract.md), parser, default, help."""

import argparse
import os
from dataclasses import dataclass

from mlmodel_contract import pod
from mlmodel_contract import spec_defaults as defaults
from mlmodel_contract.pod import ServeEnv
from mlmodel_server import options
from mlmodel_server.options import comma_separated, parse_bool, percent, positive_int, setting

_SERVER = defaults.SERVER


@dataclass(frozen=True)
class ServeSettings:
    model_path: str = setting("--model", ServeEnv.PATH, pod.MODELS_DIR, "a model file, or the directory `fetch` filled")
    name: str = setting("--name", ServeEnv.NAME, "", "the model's name in URLs", required=True)
    version: str = setting("--version", ServeEnv.VERSION, "", "the model's version (`/versions/V` paths answer too)")
    port: int = setting("--port", ServeEnv.PORT, pod.SERVER_PORT, "the HTTP port", parse=positive_int)
    host: str = setting("--host", ServeEnv.HOST, defaults.HOST, "the address to listen on (tests: 127.0.0.1)")
    workers: int = setting(
        "--workers",
        ServeEnv.WORKERS,
        _SERVER["workers"],
        "worker processes, forked after the model is loaded (they share its memory)",
        parse=positive_int,
    )
    threads: int = setting(
        "--threads",
        ServeEnv.THREADS,
        _SERVER["threads"],
        "request threads per worker; concurrent requests in one worker share model calls (eventloop: only for "
        f"a model whose one-row call takes over {defaults.SHARED_CALL_MICROSECONDS} µs; a faster one is called on "
        "the loop's thread, requests that arrive together sharing a call)",
        parse=positive_int,
    )
    timeout_seconds: int = setting(
        "--timeout-seconds",
        ServeEnv.TIMEOUT_SECONDS,
        _SERVER["timeoutSeconds"],
        "gunicorn only: a worker silent this long is restarted",
        parse=positive_int,
    )
    graceful_timeout_seconds: int = setting(
        "--graceful-timeout-seconds",
        ServeEnv.GRACEFUL_TIMEOUT_SECONDS,
        defaults.GRACEFUL_TIMEOUT_SECONDS,
        "after SIGTERM, in-flight requests get this long to finish",
        parse=positive_int,
    )
    header_timeout_seconds: int = setting(
        "--header-timeout-seconds",
        ServeEnv.HEADER_TIMEOUT_SECONDS,
        defaults.HEADER_TIMEOUT_SECONDS,
        "a request whose line and headers take longer to arrive gets 408",
        parse=positive_int,
    )
    body_timeout_seconds: int = setting(
        "--body-timeout-seconds",
        ServeEnv.BODY_TIMEOUT_SECONDS,
        defaults.BODY_TIMEOUT_SECONDS,
        "a request body that takes longer to arrive after its headers gets 408",
        parse=positive_int,
    )
    log_level: str = setting(
        "--log-level",
        ServeEnv.LOG_LEVEL,
        _SERVER["logLevel"],
        "the log level",
        parse=str.lower,
        choices=defaults.LOG_LEVELS,
    )
    max_request_bytes: int = setting(
        "--max-request-bytes",
        ServeEnv.MAX_REQUEST_BYTES,
        _SERVER["maxRequestBytes"],
        "larger request bodies get 413",
        parse=positive_int,
    )
    max_batch_rows: int = setting(
        "--max-batch-rows",
        ServeEnv.MAX_BATCH_ROWS,
        defaults.MAX_BATCH_ROWS,
        "rows of concurrent requests gathered into one model call",
        parse=positive_int,
    )
    allow_unverified: bool = setting(
        "--allow-unverified",
        ServeEnv.ALLOW_UNVERIFIED,
        defaults.ALLOW_UNVERIFIED,
        "load joblib/pickle files whose digest was not verified",
        parse=parse_bool,
    )
    api_key_file: str | None = setting(
        "--api-key-file",
        ServeEnv.API_KEY_FILE,
        None,
        f"require this key on inference routes ({ServeEnv.API_KEY} gives the key itself)",
    )
    sklearn_version_policy: str = setting(
        "--sklearn-version-policy",
        ServeEnv.SKLEARN_VERSION_POLICY,
        _SERVER["sklearnVersionPolicy"],
        "an artifact written by another scikit-learn: warn (log and serve) or error (refuse to start)",
        parse=str.lower,
        choices=defaults.SKLEARN_VERSION_POLICIES,
    )
    skops_trusted_types: tuple[str, ...] = setting(
        "--skops-trusted-types",
        ServeEnv.SKOPS_TRUSTED_TYPES,
        (),
        "comma-separated extra types a skops file may contain",
        parse=comma_separated,
    )
    termination_message_path: str | None = setting(
        "--termination-message-path",
        ServeEnv.TERMINATION_MESSAGE_PATH,
        None,
        f"one-line failure message file (default {pod.TERMINATION_MESSAGE_PATH} when writable)",
    )
    access_log: bool = setting(
        "--access-log",
        ServeEnv.ACCESS_LOG,
        _SERVER["accessLog"],
        "one JSON log line per request, probes and scrapes excepted; off by default, it costs a write per request",
        parse=parse_bool,
    )
    access_log_sample_percent: int = setting(
        "--access-log-sample-percent",
        ServeEnv.ACCESS_LOG_SAMPLE_PERCENT,
        _SERVER["accessLogSamplePercent"],
        "the share of successful requests logged by --access-log; errors are always logged",
        parse=percent,
    )
    compiled_kernels: bool = setting(
        "--compiled-kernels",
        ServeEnv.COMPILED_KERNELS,
        _SERVER["compiledKernels"],
        "serve tree models (forests, gradient boosting, XGBoost, LightGBM) with the compiled C tree walk, where it "
        "reproduces the library's predictions at load, and decode their numeric request rows with compiled code; "
        "false: the libraries' own predict",
        parse=parse_bool,
    )
    http_server: str = setting(
        "--http-server",
        ServeEnv.HTTP_SERVER,
        _SERVER["httpServer"],
        "eventloop (gunicorn's arbiter, one event loop per worker parsing HTTP in C; a request longer than "
        "--timeout-seconds restarts its worker), gunicorn (gthread, pure Python) or granian (Rust HTTP)",
        parse=str.lower,
        choices=defaults.HTTP_SERVERS,
    )


def parse_settings(argv: list[str], env: dict[str, str] | None = None) -> ServeSettings:
    """Parse flags over environment defaults; argparse exits with status 2 on bad usage."""
    parser = argparse.ArgumentParser(
        prog="mlmodel-server serve",
        description="Load a model (scikit-learn, XGBoost, LightGBM, ONNX) and serve it over HTTP (classic /predict, "
        "KServe V1, Open Inference V2).",
    )
    return options.parse(ServeSettings, argv, dict(os.environ) if env is None else env, parser)
