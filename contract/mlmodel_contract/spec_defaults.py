"""Every default of the MLModel spec, and the server's and fetcher's defaults the spec leaves to them.

The CRD generator writes these as schema defaults, the operator fills them into specs stored before a default
existed, and the server's settings take them as the defaults of their flags, so a pod without the operator's
env behaves as the spec's default says. Keys are the spec's field names.
"""

from __future__ import annotations

from typing import Any, Final

# Choices (the spec's enums and the server's flag choices).
LOG_LEVELS: Final = ("debug", "info", "warning", "error", "critical")
SPEC_LOG_LEVELS: Final = LOG_LEVELS[:4]  # the spec stops at error; the server also accepts critical
SKLEARN_VERSION_POLICIES: Final = ("warn", "error")
# The first is the default: gunicorn's arbiter with the server's own event-loop worker (llhttp parsing; every
# HTTP-layer error answered as JSON, header and body reads bounded); gunicorn with its gthread worker, the
# tutorial's stack; granian answers malformed request lines itself (README, "HTTP").
HTTP_SERVERS: Final = ("eventloop", "gunicorn", "granian")
# On eventloop, a model whose one-row call takes longer than this is served from `threads` request threads, so that
# concurrent requests share its calls (micro-batching); a faster one is called on the loop's own thread. Handing a
# request to a thread and back costs ≈ 30-40 µs there (measured on one core); a shared call saves a whole call.
SHARED_CALL_MICROSECONDS: Final = 150

REPLICAS: Final = 1
ALLOW_UNVERIFIED: Final = False
RESOURCES: Final[dict[str, dict[str, str]]] = {
    "requests": {"cpu": "250m", "memory": "256Mi"},
    "limits": {"cpu": "500m", "memory": "512Mi"},
}
AUTOSCALING: Final[dict[str, Any]] = {
    "enabled": True,
    "minReplicas": 3,
    "maxReplicas": 10,
    "targetCPUUtilizationPercentage": 70,
    "targetMemoryUtilizationPercentage": 80,
}
SERVER: Final[dict[str, Any]] = {
    "workers": 1,
    "threads": 16,
    "timeoutSeconds": 30,
    "logLevel": "info",
    "maxRequestBytes": 10 * 1024 * 1024,
    "sklearnVersionPolicy": SKLEARN_VERSION_POLICIES[0],
    "compiledKernels": True,
    "accessLog": False,
    "accessLogSamplePercent": 100,
    "httpServer": HTTP_SERVERS[0],
}
ROLLOUT: Final[dict[str, Any]] = {"maxSurge": "25%", "maxUnavailable": 0, "progressDeadlineSeconds": 600}
NETWORK_POLICY: Final[dict[str, Any]] = {"enabled": True, "allowSameNamespace": True}
INGRESS: Final[dict[str, Any]] = {"enabled": False, "path": "/", "pathType": "Prefix"}
API_KEY_SECRET_KEY: Final = "api-key"
# A PodDisruptionBudget without minAvailable or maxUnavailable.
PDB_MAX_UNAVAILABLE: Final = 1

# The fetcher's defaults for spec.model.maxBytes and spec.model.fetchTimeoutSeconds when they are unset.
MAX_BYTES: Final = 2 * 1024**3
FETCH_TIMEOUT_SECONDS: Final = 300
FETCH_RETRIES: Final = 4

# Server defaults the spec does not expose.
HOST: Final = "0.0.0.0"
GRACEFUL_TIMEOUT_SECONDS: Final = 25
HEADER_TIMEOUT_SECONDS: Final = 10
BODY_TIMEOUT_SECONDS: Final = 30
MAX_BATCH_ROWS: Final = 64
