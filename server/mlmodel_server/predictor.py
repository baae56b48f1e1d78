"""The protocol-neutral core: one loaded model, its contract, and batched prediction."""

import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlmodel_contract import spec_defaults
from mlmodel_server.batching import BatchResult, MicroBatcher
from mlmodel_server.errors import InvalidInput
from mlmodel_server.frames import rows_to_frame, stack_frames
from mlmodel_server.inputs import rows_to_matrix
from mlmodel_server.kernels import Kernels, build_kernels, plain_kernels
from mlmodel_server.signature import ModelSignature, final_step, signature_of

CALL_TIMINGS = 15


@dataclass(frozen=True)
class ModelIdentity:
    name: str
    version: str
    sha256: str
    format: str
    # {library: version}: what the artifact records, what this image runs, and the libraries whose difference
    # matters (fetch/versions.py); V2 metadata and mlmodel_model_library_info show them
    recorded_versions: Mapping[str, str] = field(default_factory=dict)
    runtime_versions: Mapping[str, str] = field(default_factory=dict)
    version_mismatches: tuple[str, ...] = ()


@dataclass(frozen=True)
class PlannedPrediction:
    """A request read up to its model call: the rows, whether it wants probabilities, and how its response
    payload is made from their result. The call is made for it alone (`Predictor.answer`) or shared with the
    rows of other requests that arrived together (`Predictor.predict_together`)."""

    rows: Any
    want_proba: bool
    answer: Callable[[BatchResult], dict[str, Any]]


class Predictor:
    def __init__(
        self,
        estimator: Any,
        identity: ModelIdentity,
        max_batch_rows: int = 64,
        on_batch: Callable[[int, int], None] | None = None,
        compiled_kernels: bool = spec_defaults.SERVER["compiledKernels"],
        signature: ModelSignature | None = None,  # default: the estimator's own (signature_of)
    ):
        serve_single_threaded(estimator)
        self.estimator = estimator
        self.identity = identity
        self.signature: ModelSignature = signature if signature is not None else signature_of(estimator)
        takes_frame = self.signature.takes_frame
        # JSON rows → the model's input: a DataFrame of typed columns, or a float matrix
        self.read_rows: Callable[[Any, ModelSignature, str], tuple[Any, bool]] = (
            rows_to_frame if takes_frame else rows_to_matrix
        )
        # The fast kernels take float matrices: a model of typed columns is served by its own methods.
        self.kernels: Kernels = (
            plain_kernels(estimator, self.signature)
            if takes_frame
            else build_kernels(estimator, self.signature, compiled=compiled_kernels)
        )
        classes = getattr(final_step(estimator), "classes_", None)
        self._classes = np.asarray(classes) if self.signature.is_classifier else None
        self._batcher = MicroBatcher(
            self._call_model,
            max_rows=max_batch_rows,
            on_batch=on_batch,
            stack=stack_frames if takes_frame else np.concatenate,
        )

    def one_row_call_seconds(self) -> float | None:
        """The median time of the model's call on one row of zeros (probabilities too, when it has them); None
        for a model of typed columns, or one that refuses zeros."""
        if self.signature.takes_frame or not self.signature.n_features:
            return None
        row = np.zeros((1, self.signature.n_features))
        times = []
        try:
            for _ in range(CALL_TIMINGS):
                started = time.perf_counter()
                self._call_model(row, self.signature.has_proba)
                times.append(time.perf_counter() - started)
        except Exception:
            return None
        return sorted(times)[len(times) // 2]

    def serve_from_one_thread(self) -> None:
        """The worker's one thread makes every call: a lone request's call is made at once, with no batcher
        thread in between, and requests that arrived together share calls through `predict_together`."""
        self._batcher.concurrent = False

    def predict(self, rows: np.ndarray, want_proba: bool = False) -> BatchResult:
        self._check_proba(want_proba)
        try:
            return self._batcher.submit(rows, want_proba)
        except ValueError as error:
            raise rejected_input(error) from None

    def answer(self, planned: PlannedPrediction) -> dict[str, Any]:
        return planned.answer(self.predict(planned.rows, planned.want_proba))

    def predict_together(self, planned: list[PlannedPrediction]) -> list[BatchResult | Exception]:
        """The results of requests that arrived together on one thread, in order, their rows sharing calls;
        a request whose rows the model refuses gets its InvalidInput, the others their results."""
        refused: dict[int, Exception] = {}
        for index, prediction in enumerate(planned):
            try:
                self._check_proba(prediction.want_proba)
            except InvalidInput as error:
                refused[index] = error
        called = iter(
            self._batcher.run_together(
                [(p.rows, p.want_proba) for index, p in enumerate(planned) if index not in refused]
            )
        )
        outcomes: list[BatchResult | Exception] = []
        for index in range(len(planned)):
            outcome = refused[index] if index in refused else next(called)
            outcomes.append(rejected_input(outcome) if isinstance(outcome, ValueError) else outcome)
        return outcomes

    def _check_proba(self, want_proba: bool) -> None:
        if want_proba and not self.signature.has_proba:
            raise InvalidInput(f"{self.signature.estimator_type} has no predict_proba")

    def _call_model(self, rows: np.ndarray, want_proba: bool) -> tuple[np.ndarray, np.ndarray | None]:
        kernels = self.kernels
        if want_proba and kernels.predict_both is not None:
            return kernels.predict_both(rows)
        if want_proba and kernels.predict_proba is not None:
            probabilities = kernels.predict_proba(rows)
            if self._classes is not None and kernels.predict_from_proba:
                return self._classes.take(np.argmax(probabilities, axis=1), axis=0), probabilities
            return kernels.predict(rows), probabilities
        return kernels.predict(rows), None


def rejected_input(error: ValueError) -> InvalidInput:
    # Input that passed the shape and type checks can still break an estimator's own rules (MultinomialNB
    # refuses negative counts, for one): that is the client's input, not a fault.
    return InvalidInput(f"the model rejected the input: {error}")


def serve_single_threaded(estimator: Any) -> None:
    """n_jobs=1 on the estimator and every step of it. The server runs calls side by side in threads and
    workers, one call per micro-batch; an artifact trained with n_jobs=-1 would otherwise start a thread per
    core of the node (not of the pod) on every call, and a forest's sum over its trees would be taken in
    whatever order those threads finish, so results could differ in the last bits from call to call."""
    get_params = getattr(estimator, "get_params", None)
    if get_params is None:
        return
    try:
        parallel = [
            name
            for name, value in get_params(deep=True).items()
            if name.split("__")[-1] == "n_jobs" and value not in (None, 1)
        ]
        if parallel:
            estimator.set_params(**{name: 1 for name in parallel})
    except Exception:  # an estimator with unusual parameters is served as it is
        pass


def quiet_feature_name_warnings() -> None:
    """Named columns are reordered into positional rows before prediction, so sklearn's warning that the
    array "does not have valid feature names" would only be noise on every call."""
    warnings.filterwarnings("ignore", message="X does not have valid feature names", category=UserWarning)
