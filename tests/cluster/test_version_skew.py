"""A scikit-learn version skew that `fetch` noted in its termination message on success reaches the MLModel as
a VersionSkew condition and one SklearnVersionMismatch Warning Event, while Ready stays True (policy `warn`).
The pod's status is a kubelet's shape, simulated by kwok (hack/kwok/mlmodel-failures.yaml, `fetch-note`)."""

from __future__ import annotations

import pytest
from kube_helpers import get_json, wait_for
from test_operator import apply, condition, mlmodel, ready

from mlmodel_server.fetch.versions import skew_message

pytestmark = pytest.mark.cluster


def test_a_version_skew_is_a_condition_and_an_event_while_ready(kubectl, namespace, operator):
    line = skew_message("model.joblib", ("1.0.2",), "1.9.1")
    apply(
        kubectl,
        namespace,
        mlmodel(podLabels={"mlmodel.test/fail": "fetch-note"}, podAnnotations={"mlmodel.test/message": line}),
    )

    def skewed_and_ready():
        obj = ready(kubectl, namespace)
        return obj if obj and condition(obj, "VersionSkew").get("status") == "True" else None

    obj = wait_for(skewed_and_ready, 60, what="Ready=True with VersionSkew=True")
    skew = condition(obj, "VersionSkew")
    assert skew["reason"] == "SklearnVersionMismatch"
    assert skew["observedGeneration"] == obj["metadata"]["generation"]
    assert skew["message"].startswith(
        "model.joblib was written with scikit-learn 1.0.2 but this image runs 1.9.1 (fetch container of pod iris-"
    ), skew
    assert condition(obj, "Ready")["reason"] == "Available"

    def skew_events():
        events = get_json(kubectl, "events", "-n", namespace, "--field-selector", "involvedObject.name=iris")["items"]
        return [
            e
            for e in events
            if e["reason"] == "SklearnVersionMismatch" and e["source"].get("component") == "mlmodel-operator"
        ] or None

    (event,) = wait_for(skew_events, 30, what="the SklearnVersionMismatch Event")
    assert event["type"] == "Warning" and "scikit-learn 1.0.2" in event["message"]
    assert event.get("count", 1) == 1, event
