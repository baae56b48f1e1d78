"""The `serve` role's settings: every flag has an environment twin (docs/pod-contract.md)."""

import argparse
import os
from dataclasses import dataclass

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off", ""})
VERSION_POLICIES = ("warn", "error")
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
# The first is the default: gunicorn answers every HTTP-layer error as JSON and bounds header and body reads;
# granian is faster per CPU second but answers malformed request lines itself (README, "HTTP").
HTTP_SERVERS = ("gunicorn", "granian")


@dataclass(frozen=True)
class ServeSettings:
    model_path: str
    name: str
    version: str = ""
    port: int = 8080
    host: str = "0.0.0.0"
    workers: int = 1
    threads: int = 16
    timeout_seconds: int = 30
    graceful_timeout_seconds: int = 25
    header_timeout_seconds: int = 10
    body_timeout_seconds: int = 30
    log_level: str = "info"
    max_request_bytes: int = 10 * 1024 * 1024
    max_batch_rows: int = 64
    allow_unverified: bool = False
    api_key_file: str | None = None
    sklearn_version_policy: str = "warn"
    skops_trusted_types: tuple[str, ...] = ()
    termination_message_path: str | None = None
    access_log: bool = False
    access_log_sample_percent: int = 100
    compiled_kernels: bool = False
    http_server: str = HTTP_SERVERS[0]


def parse_bool(text: str) -> bool:
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def percent(text: str) -> int:
    value = positive_int(text)
    if value > 100:
        raise argparse.ArgumentTypeError(f"expected a percentage from 1 to 100, got {value}")
    return value


def split_types(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def build_parser(env: dict[str, str]) -> argparse.ArgumentParser:
    """Defaults come from the environment twins, so a flag always wins over its variable."""

    def env_default(variable: str, fallback: str | None) -> str | None:
        return env.get(variable, fallback)

    parser = argparse.ArgumentParser(
        prog="mlmodel-server serve",
        description="Load a scikit-learn model and serve it over HTTP (classic /predict, KServe V1, Open Inference V2).",
    )
    add = parser.add_argument
    add(
        "--model",
        dest="model_path",
        default=env_default("MLMODEL_PATH", "/models"),
        help="a model file, or the directory `fetch` filled (env MLMODEL_PATH)",
    )
    add("--name", default=env_default("MLMODEL_NAME", None), help="the model's name in URLs (env MLMODEL_NAME)")
    add("--version", default=env_default("MLMODEL_VERSION", ""), help="the model's version (env MLMODEL_VERSION)")
    add("--port", type=positive_int, default=env_default("MLMODEL_PORT", "8080"), help="env MLMODEL_PORT")
    add("--host", default=env_default("MLMODEL_HOST", "0.0.0.0"), help="env MLMODEL_HOST")
    add("--workers", type=positive_int, default=env_default("MLMODEL_WORKERS", "1"), help="env MLMODEL_WORKERS")
    add(
        "--threads",
        type=positive_int,
        default=env_default("MLMODEL_THREADS", "16"),
        help="request threads per worker; concurrent requests in one worker share model calls (env MLMODEL_THREADS)",
    )
    add(
        "--timeout-seconds",
        type=positive_int,
        default=env_default("MLMODEL_TIMEOUT_SECONDS", "30"),
        help="a worker silent this long is restarted (env MLMODEL_TIMEOUT_SECONDS)",
    )
    add(
        "--graceful-timeout-seconds",
        type=positive_int,
        default=env_default("MLMODEL_GRACEFUL_TIMEOUT_SECONDS", "25"),
        help="after SIGTERM, in-flight requests get this long to finish (env MLMODEL_GRACEFUL_TIMEOUT_SECONDS)",
    )
    add(
        "--header-timeout-seconds",
        type=positive_int,
        default=env_default("MLMODEL_HEADER_TIMEOUT_SECONDS", "10"),
        help="a request whose line and headers take longer to arrive gets 408 (env MLMODEL_HEADER_TIMEOUT_SECONDS)",
    )
    add(
        "--body-timeout-seconds",
        type=positive_int,
        default=env_default("MLMODEL_BODY_TIMEOUT_SECONDS", "30"),
        help="a request body that takes longer to arrive after its headers gets 408 (env MLMODEL_BODY_TIMEOUT_SECONDS)",
    )
    add(
        "--log-level",
        choices=LOG_LEVELS,
        type=str.lower,
        default=env_default("MLMODEL_LOG_LEVEL", "info"),
        help="env MLMODEL_LOG_LEVEL",
    )
    add(
        "--max-request-bytes",
        type=positive_int,
        default=env_default("MLMODEL_MAX_REQUEST_BYTES", "10485760"),
        help="larger request bodies get 413 (env MLMODEL_MAX_REQUEST_BYTES)",
    )
    add(
        "--max-batch-rows",
        type=positive_int,
        default=env_default("MLMODEL_MAX_BATCH_ROWS", "64"),
        help="rows of concurrent requests gathered into one model call (env MLMODEL_MAX_BATCH_ROWS)",
    )
    add(
        "--allow-unverified",
        type=parse_bool,
        nargs="?",
        const=True,
        default=env_default("MLMODEL_ALLOW_UNVERIFIED", "false"),
        help="load joblib/pickle files whose digest was not verified (env MLMODEL_ALLOW_UNVERIFIED)",
    )
    add(
        "--api-key-file",
        default=env_default("MLMODEL_API_KEY_FILE", None),
        help="require this key on inference routes (env MLMODEL_API_KEY_FILE; MLMODEL_API_KEY gives the key itself)",
    )
    add(
        "--sklearn-version-policy",
        choices=VERSION_POLICIES,
        type=str.lower,
        default=env_default("MLMODEL_SKLEARN_VERSION_POLICY", "warn"),
        help="env MLMODEL_SKLEARN_VERSION_POLICY",
    )
    add(
        "--skops-trusted-types",
        type=split_types,
        default=env_default("MLMODEL_SKOPS_TRUSTED_TYPES", ""),
        help="comma-separated extra types a skops file may contain (env MLMODEL_SKOPS_TRUSTED_TYPES)",
    )
    add(
        "--termination-message-path",
        default=env_default("MLMODEL_TERMINATION_MESSAGE_PATH", None),
        help="env MLMODEL_TERMINATION_MESSAGE_PATH",
    )
    add(
        "--access-log",
        type=parse_bool,
        nargs="?",
        const=True,
        default=env_default("MLMODEL_ACCESS_LOG", "false"),
        help="one JSON log line per request, probes and scrapes excepted; off by default, it costs a write per "
        "request (env MLMODEL_ACCESS_LOG)",
    )
    add(
        "--access-log-sample-percent",
        type=percent,
        default=env_default("MLMODEL_ACCESS_LOG_SAMPLE_PERCENT", "100"),
        help="the share of successful requests logged by --access-log; errors are always logged "
        "(env MLMODEL_ACCESS_LOG_SAMPLE_PERCENT)",
    )
    add(
        "--compiled-kernels",
        type=parse_bool,
        nargs="?",
        const=True,
        default=env_default("MLMODEL_COMPILED_KERNELS", "false"),
        help="walk forests, and decode their numeric request rows, with numba-compiled code: several times "
        "faster, at ~130 MiB more memory for numba and LLVM (env MLMODEL_COMPILED_KERNELS)",
    )
    add(
        "--http-server",
        choices=HTTP_SERVERS,
        type=str.lower,
        default=env_default("MLMODEL_HTTP_SERVER", HTTP_SERVERS[0]),
        help="granian (Rust HTTP, several times less overhead per request) or gunicorn (gthread, pure Python; "
        "restarts a worker silent for --timeout-seconds) (env MLMODEL_HTTP_SERVER)",
    )
    return parser


def parse_settings(argv: list[str], env: dict[str, str] | None = None) -> ServeSettings:
    """Parse flags over environment defaults; argparse exits with status 2 on bad usage."""
    environment = dict(os.environ) if env is None else env
    parser = build_parser(environment)
    args = parser.parse_args(argv)
    if not args.name:
        parser.error("--name (or MLMODEL_NAME) is required")
    # argparse applies `type` to string defaults too, so every field is already converted here.
    return ServeSettings(
        model_path=args.model_path,
        name=args.name,
        version=args.version,
        port=args.port,
        host=args.host,
        workers=args.workers,
        threads=args.threads,
        timeout_seconds=args.timeout_seconds,
        graceful_timeout_seconds=args.graceful_timeout_seconds,
        header_timeout_seconds=args.header_timeout_seconds,
        body_timeout_seconds=args.body_timeout_seconds,
        log_level=args.log_level,
        max_request_bytes=args.max_request_bytes,
        max_batch_rows=args.max_batch_rows,
        allow_unverified=args.allow_unverified,
        api_key_file=args.api_key_file,
        sklearn_version_policy=args.sklearn_version_policy,
        skops_trusted_types=tuple(args.skops_trusted_types),
        termination_message_path=args.termination_message_path,
        access_log=args.access_log,
        access_log_sample_percent=args.access_log_sample_percent,
        compiled_kernels=args.compiled_kernels,
        http_server=args.http_server,
    )
