"""The model pod as the server sees it: containers, paths, port, environment names and credential keys.

The operator configures a model pod only through these names; the server reads only these.
"""

from __future__ import annotations

from typing import Final

from . import spec_defaults

COMMAND: Final = "mlmodel-server"
FETCH_CONTAINER: Final = "fetch"  # the init container: `mlmodel-server fetch`
SERVER_CONTAINER: Final = "server"  # `mlmodel-server serve`

POD_UID: Final = 10001
# Writable paths are emptyDirs; the root filesystem is read-only.
MODELS_DIR: Final = "/models"  # `fetch` fills it, `serve` reads it
TMP_DIR: Final = "/tmp"
METRICS_DIR: Final = f"{TMP_DIR}/metrics"  # PROMETHEUS_MULTIPROC_DIR in pods
PVC_ROOT: Final = "/mnt/pvc"  # a pvc:// artifact's claim is mounted at PVC_ROOT/<claim>
API_KEY_DIR: Final = "/var/run/secrets/mlmodel/api-key"  # the API key Secret's key is a file here
TERMINATION_MESSAGE_PATH: Final = "/dev/termination-log"

SERVER_PORT: Final = 8080
SERVER_PORT_NAME: Final = "http"
SERVICE_PORT: Final = 80
HEALTH_PATH: Final = "/health"
READY_PATH: Final = "/ready"
METRICS_PATH: Final = "/metrics"

# Drain on rollout: after a pod is marked terminating, kube-proxy and ingress controllers need a moment to drop
# it from their endpoints; until then the server keeps answering (preStop sleep), and only then gets SIGTERM
# and its graceful timeout for in-flight requests.
PRESTOP_DRAIN_SECONDS: Final = 5
TERMINATION_GRACE_SECONDS: Final = PRESTOP_DRAIN_SECONDS + spec_defaults.GRACEFUL_TIMEOUT_SECONDS + 5

ENV_PREFIX: Final = "MLMODEL_"  # every variable of this prefix belongs to the operator (spec.env may not set one)
TERMINATION_MESSAGE_PATH_ENV: Final = "MLMODEL_TERMINATION_MESSAGE_PATH"  # both roles


class FetchEnv:
    """The `fetch` role's variables (each the env twin of a flag)."""

    URI: Final = "MLMODEL_URI"
    SHA256: Final = "MLMODEL_SHA256"
    DEST: Final = "MLMODEL_DEST"
    FORMAT: Final = "MLMODEL_FORMAT"
    MAX_BYTES: Final = "MLMODEL_MAX_BYTES"
    TIMEOUT_SECONDS: Final = "MLMODEL_FETCH_TIMEOUT_SECONDS"
    RETRIES: Final = "MLMODEL_FETCH_RETRIES"
    PVC_ROOT: Final = "MLMODEL_PVC_ROOT"
    TERMINATION_MESSAGE_PATH: Final = TERMINATION_MESSAGE_PATH_ENV


class ServeEnv:
    """The `serve` role's variables (each the env twin of a flag, except API_KEY)."""

    PATH: Final = "MLMODEL_PATH"
    NAME: Final = "MLMODEL_NAME"
    VERSION: Final = "MLMODEL_VERSION"
    PORT: Final = "MLMODEL_PORT"
    HOST: Final = "MLMODEL_HOST"
    WORKERS: Final = "MLMODEL_WORKERS"
    THREADS: Final = "MLMODEL_THREADS"
    TIMEOUT_SECONDS: Final = "MLMODEL_TIMEOUT_SECONDS"
    GRACEFUL_TIMEOUT_SECONDS: Final = "MLMODEL_GRACEFUL_TIMEOUT_SECONDS"
    HEADER_TIMEOUT_SECONDS: Final = "MLMODEL_HEADER_TIMEOUT_SECONDS"
    BODY_TIMEOUT_SECONDS: Final = "MLMODEL_BODY_TIMEOUT_SECONDS"
    LOG_LEVEL: Final = "MLMODEL_LOG_LEVEL"
    MAX_REQUEST_BYTES: Final = "MLMODEL_MAX_REQUEST_BYTES"
    MAX_BATCH_ROWS: Final = "MLMODEL_MAX_BATCH_ROWS"
    ALLOW_UNVERIFIED: Final = "MLMODEL_ALLOW_UNVERIFIED"
    API_KEY_FILE: Final = "MLMODEL_API_KEY_FILE"
    API_KEY: Final = "MLMODEL_API_KEY"  # the key itself, when no key file is given
    SKLEARN_VERSION_POLICY: Final = "MLMODEL_SKLEARN_VERSION_POLICY"
    SKOPS_TRUSTED_TYPES: Final = "MLMODEL_SKOPS_TRUSTED_TYPES"
    TERMINATION_MESSAGE_PATH: Final = TERMINATION_MESSAGE_PATH_ENV
    ACCESS_LOG: Final = "MLMODEL_ACCESS_LOG"
    ACCESS_LOG_SAMPLE_PERCENT: Final = "MLMODEL_ACCESS_LOG_SAMPLE_PERCENT"
    COMPILED_KERNELS: Final = "MLMODEL_COMPILED_KERNELS"
    HTTP_SERVER: Final = "MLMODEL_HTTP_SERVER"


PROMETHEUS_MULTIPROC_DIR_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"
# Native thread pools size themselves to the node's cores, not the pod's CPU limit; the server sets each to 1
# unless the pod's env says otherwise.
NATIVE_THREAD_ENV: Final = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)

# Keys of the Secret named by spec.model.credentialsSecret: the `fetch` container's environment (envFrom).
AWS_ACCESS_KEY_ID: Final = "AWS_ACCESS_KEY_ID"
AWS_SECRET_ACCESS_KEY: Final = "AWS_SECRET_ACCESS_KEY"
AWS_SESSION_TOKEN: Final = "AWS_SESSION_TOKEN"
AWS_REGION: Final = "AWS_REGION"
AWS_ENDPOINT_URL: Final = "AWS_ENDPOINT_URL"  # an S3-compatible endpoint, e.g. MinIO
HTTP_AUTHORIZATION: Final = "HTTP_AUTHORIZATION"  # the whole Authorization header value for http(s)
CREDENTIAL_KEYS: Final = (
    AWS_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY,
    AWS_SESSION_TOKEN,
    AWS_REGION,
    AWS_ENDPOINT_URL,
    HTTP_AUTHORIZATION,
)
# The credential keys whose values are secret: never in a log line or a message.
SECRET_CREDENTIAL_KEYS: Final = (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, HTTP_AUTHORIZATION)
