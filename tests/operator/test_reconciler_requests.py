"""Pure tests of the Reconciler's event-facing logic: which watch events need work, and how requested
work coalesces (a fake client records the writes; no cluster)."""

from __future__ import annotations

import copy
import logging

from mlmodel_operator.kube import KubeError
from mlmodel_operator.reconcile import Observed, Reconciler
from mlmodel_operator.settings import Settings
from mlmodel_operator.status_writer import StatusWriter


def mlmodel(generation: int = 1, version: str = "1") -> dict:
    return {
        "apiVersion": "serving.mlops.dev/v1alpha1",
        "kind": "MLModel",
        "metadata": {"name": "iris", "namespace": "ns", "uid": "u-1", "generation": generation},
        "spec": {"model": {"uri": "https://models.example.com/iris.joblib", "sha256": "a" * 64, "version": version}},
    }


class FakeKube:
    """Applies return what was sent plus a resourceVersion, as the API server would."""

    def __init__(self):
        self.calls: list[tuple[str, str]] = []
        self.applied: dict[str, dict] = {}

    def apply(self, obj: dict, field_manager: str = "") -> dict:
        self.calls.append(("apply", obj["kind"]))
        live = copy.deepcopy(obj)
        live["metadata"]["resourceVersion"] = str(len(self.calls))
        self.applied[obj["kind"]] = live
        return live

    def patch_status(self, namespace: str, name: str, changes: dict) -> None:
        self.calls.append(("status", name))

    def delete(self, kind: str, namespace: str, name: str) -> bool:
        self.calls.append(("delete", kind))
        return True


def reconciler(kube: FakeKube) -> Reconciler:
    return Reconciler(kube, Settings(), StatusWriter(kube, lambda *_: None), logging.getLogger("test"), workers=2)


def test_a_generation_is_reconciled_once_and_a_new_one_again():
    kube = FakeKube()
    subject = reconciler(kube)
    assert not subject.has_reconciled(mlmodel())
    subject.reconcile(mlmodel(), lambda: Observed())
    assert subject.has_reconciled(mlmodel())
    assert not subject.has_reconciled(mlmodel(generation=2, version="2"))
    subject.forget("ns", "iris")
    assert not subject.has_reconciled(mlmodel())


def test_our_own_applies_coming_back_need_no_apply_but_edits_and_strangers_do():
    kube = FakeKube()
    subject = reconciler(kube)
    assert not subject.child_converged("ns", "iris", {"kind": "Service"})  # nothing rendered yet
    subject.reconcile(mlmodel(), lambda: Observed())
    for kind in ("Deployment", "Service", "NetworkPolicy"):
        assert subject.child_converged("ns", "iris", kube.applied[kind])
    edited = copy.deepcopy(kube.applied["Deployment"])
    edited["spec"]["template"]["spec"]["containers"][0]["image"] = "hand-edited:9"
    assert not subject.child_converged("ns", "iris", edited)
    assert not subject.child_converged("ns", "iris", {"kind": "Ingress", "metadata": {"name": "iris"}})


def test_requests_waiting_for_an_mlmodel_coalesce_into_one_run():
    kube = FakeKube()
    subject = reconciler(kube)
    subject.reconcile(mlmodel(), lambda: Observed())
    resolved = []

    def resolve():
        resolved.append(1)
        return mlmodel(), lambda: Observed(children=dict(kube.applied))

    lock = subject.queue.lock(("ns", "iris"))
    with lock:  # a reconcile of this MLModel is running: requests queue behind it
        for full in (False, True, False, False):
            subject.request("ns", "iris", resolve, full=full)
    subject.queue.shutdown(wait=True)  # lets the queued run finish
    assert resolved == [1]  # one run for four requests
    assert [c for c in kube.calls if c[0] == "apply"] == [
        ("apply", "Service"),
        ("apply", "NetworkPolicy"),
        ("apply", "Deployment"),
    ]  # the first reconcile only


class RefusingKube(FakeKube):
    """Refuses the first apply of each kind in `refuse` with a 422, as the API server refuses the merge of our
    fields into a hand-edited child; records merge patches."""

    def __init__(self, refuse: set[str]):
        super().__init__()
        self.refuse = set(refuse)
        self.patches: list[tuple[str, dict]] = []

    def apply(self, obj: dict, field_manager: str = "") -> dict:
        if obj["kind"] in self.refuse:
            self.refuse.discard(obj["kind"])
            self.calls.append(("refused", obj["kind"]))
            raise KubeError(422, "Invalid", f'{obj["kind"]} "iris" is invalid: spec.ports[1].name: Duplicate value')
        return super().apply(obj, field_manager)

    def merge_patch(self, obj: dict, patch: dict, resource_version: str | None = None) -> dict:
        self.calls.append(("repair", obj["kind"]))
        self.patches.append((obj["kind"], patch))
        return self.applied.get(obj["kind"], obj)


def test_a_422_after_a_hand_edit_is_repaired_with_the_rendered_lists_and_applied_again():
    kube = FakeKube()
    reconciler(kube).reconcile(mlmodel(), lambda: Observed())
    refusing = RefusingKube({"Service"})
    subject = reconciler(refusing)
    edited = copy.deepcopy(kube.applied)
    edited["Service"]["spec"]["ports"][0]["port"] = 81  # a hand edit nothing in managedFields explains

    subject.reconcile(mlmodel(), lambda: Observed(children=edited))

    assert refusing.calls[:3] == [("refused", "Service"), ("repair", "Service"), ("apply", "Service")]
    assert refusing.patches == [("Service", {"spec": {"ports": kube.applied["Service"]["spec"]["ports"]}})]


def test_a_422_that_survives_the_repair_is_the_specs_own_and_reported():
    kube = FakeKube()
    reconciler(kube).reconcile(mlmodel(), lambda: Observed())
    refusing = RefusingKube({"Deployment"})
    refusing.apply = lambda obj, field_manager="": (_ for _ in ()).throw(KubeError(422, "Invalid", "spec is bad"))
    written = []
    refusing.patch_status = lambda namespace, name, changes: written.append(changes)

    edited = copy.deepcopy(kube.applied)
    edited["Deployment"]["spec"]["template"]["spec"]["containers"][0]["image"] = "hand-edited:9"

    reconciler(refusing).reconcile(mlmodel(), lambda: Observed(children=edited))

    assert refusing.calls == [("repair", "Deployment")]  # once: the second refusal is reported, not retried
    ready = next(c for c in written[0]["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "InvalidChild")
