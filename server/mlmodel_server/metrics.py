"""Prometheus metrics in prometheus_client's multiprocess mode: every worker (gunicorn's or granian's) writes its own
files, /metrics sums them.

prometheus_client picks its multiprocess value class when it is first imported, so
`metrics_dir.prepare_multiprocess_dir` must run (in the master, before any worker exists) before this module is
imported. `serving.command` takes care of that order.
"""

from collections.abc import Iterator, Mapping

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import CounterMetricFamily, Metric

from mlmodel_server.fetch.versions import KNOWN_LIBRARIES

PREFIX = "mlmodel_"
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 1024, 4096, 16384, 65536)

REQUESTS = Counter(
    PREFIX + "http_requests_total",
    "HTTP requests handled, by route template, method and status code.",
    ["route", "method", "status"],
)
REQUEST_DURATION = Histogram(
    PREFIX + "http_request_duration_seconds",
    "Time from request start to response, by route template.",
    ["route"],
    buckets=LATENCY_BUCKETS,
)
BATCH_ROWS = Histogram(PREFIX + "batch_rows", "Rows per estimator call.", buckets=BATCH_BUCKETS)
# The sum and the count of batch_rows, exposed as counters of their own at each scrape (`DerivedCounters`): a model
# call writes one histogram, not two more counters (each write is a locked mmap write, per call).
DERIVED_COUNTERS = {
    PREFIX + "batch_rows_sum": (PREFIX + "predicted_rows", "Rows the model predicted."),
    PREFIX + "batch_rows_count": (PREFIX + "model_calls", "Calls into the estimator (one per micro-batch)."),
}
BATCH_REQUESTS = Histogram(PREFIX + "batch_requests", "Requests sharing one estimator call.", buckets=BATCH_BUCKETS)
MODEL_LOAD_DURATION = Gauge(
    PREFIX + "model_load_duration_seconds",
    "Time it took to load the model.",
    multiprocess_mode="max",
)
MODEL_INFO = Gauge(
    PREFIX + "model_info",
    "The model served (always 1).",
    # fast_path: the fast kernel serving the model (kernels.py), under the label's published name
    ["name", "version", "sha256", "format", "sklearn_version", "fast_path"],
    multiprocess_mode="max",
)

MODEL_LIBRARY_INFO = Gauge(
    PREFIX + "model_library_info",
    "The library versions the artifact records and the image runs, one series per library (always 1); "
    "mismatch is true when the difference matters under the library's rule.",
    # library: one of versions.KNOWN_LIBRARIES; a version the artifact does not record (or the image lacks) is ""
    ["name", "library", "recorded_version", "runtime_version", "mismatch"],
    multiprocess_mode="max",
)


# Label values come from fixed sets, whatever a client sends: an invented method is `other`, and a path no route
# matches is one route label (app.py), so clients cannot grow /metrics and the multiprocess files.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"})
OTHER_METHOD = "other"

# Bound children, so a request costs a dict lookup instead of prometheus_client's label validation. The values
# behind them notice a fork by themselves (multiprocess mode), so children bound in the master stay correct.
_request_children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}


def observe_request(route: str, method: str, status: int, seconds: float) -> None:
    key = (route, method, status)
    children = _request_children.get(key)
    if children is None:
        method_label = method if method in METHODS else OTHER_METHOD
        children = (REQUESTS.labels(route, method_label, str(status)), REQUEST_DURATION.labels(route))
        if len(_request_children) < 1024:  # routes and statuses are few; never grow without bound
            _request_children[key] = children
    children[0].inc()
    children[1].observe(seconds)


def observe_batch(requests: int, rows: int) -> None:
    BATCH_ROWS.observe(rows)
    BATCH_REQUESTS.observe(requests)


def record_model(
    name: str,
    version: str,
    sha256: str,
    model_format: str,
    sklearn_version: str,
    fast_kernel: str | None,
    load_seconds: float,
) -> None:
    MODEL_LOAD_DURATION.set(load_seconds)
    MODEL_INFO.labels(name, version, sha256, model_format, sklearn_version, fast_kernel or "none").set(1)


def record_library_versions(
    name: str, recorded: Mapping[str, str], runtime: Mapping[str, str], mismatches: tuple[str, ...]
) -> None:
    for library in KNOWN_LIBRARIES:
        if library in recorded or library in runtime:
            mismatch = "true" if library in mismatches else "false"
            MODEL_LIBRARY_INFO.labels(name, library, recorded.get(library, ""), runtime.get(library, ""), mismatch).set(
                1
            )


def worker_exited(pid: int) -> None:
    multiprocess.mark_process_dead(pid)


class DerivedCounters:
    """The workers' files, summed, plus the counters that are a histogram's sum and count (DERIVED_COUNTERS)."""

    def __init__(self, source: multiprocess.MultiProcessCollector):
        self._source = source

    def collect(self) -> Iterator[Metric]:
        for family in self._source.collect():
            yield family
            for sample in family.samples:
                if sample.name in DERIVED_COUNTERS:
                    name, documentation = DERIVED_COUNTERS[sample.name]
                    counter = CounterMetricFamily(name, documentation)
                    counter.add_metric([], sample.value)
                    yield counter


def exposition() -> tuple[bytes, str]:
    registry = CollectorRegistry()
    registry.register(DerivedCounters(multiprocess.MultiProcessCollector(None)))
    return generate_latest(registry), CONTENT_TYPE_LATEST
