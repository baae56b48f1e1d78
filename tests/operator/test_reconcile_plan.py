"""Pure tests of the reconcile plan: what gets applied, handed over and deleted."""

from mlmodel_operator.drift import has_drifted, owns_field
from mlmodel_operator.kube import FIELD_MANAGER
from mlmodel_operator.reconcile import plan


def deployment(replicas: int | None = 2, image: str = "img:1", managed_replicas: bool = False) -> dict:
    spec = {"template": {"spec": {"containers": [{"name": "server", "image": image,
                                                   "resources": {"limits": {"cpu": "0.5"}}}]}}}
    if replicas is not None:
        spec["replicas"] = replicas
    fields = {"f:spec": {"f:replicas": {}, "f:template": {}}} if managed_replicas else {"f:spec": {"f:template": {}}}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {
        "name": "iris", "namespace": "ns",
        "managedFields": [{"manager": FIELD_MANAGER, "operation": "Apply", "fieldsV1": fields}]}, "spec": spec}


def service() -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "iris", "namespace": "ns"},
            "spec": {"ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}


def live(obj: dict, **changes) -> dict:
    """What the API server returns: the applied fields plus defaults it added."""
    copy = {**obj, "metadata": {**obj["metadata"], "resourceVersion": "7", "uid": "u"}, "status": {"x": 1}}
    if obj["kind"] == "Service":
        copy["spec"] = {**obj["spec"], "clusterIP": "10.0.0.1",
                        "ports": [{**obj["spec"]["ports"][0], "protocol": "TCP"}]}
    copy.update(changes)
    return copy


def test_nothing_to_do_when_live_objects_carry_every_desired_field():
    desired = [service(), deployment()]
    live_objects = {"Service": live(service()), "Deployment": live(deployment())}
    live_objects["Deployment"]["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] = "500m"
    todo = plan(desired, live_objects)
    assert (todo.apply, todo.delete, todo.handover) == ([], [], [])


def test_missing_and_hand_edited_children_are_applied():
    desired = [service(), deployment(image="img:1")]
    todo = plan(desired, {"Deployment": live(deployment(image="hand-edited:9"))})
    assert [o["kind"] for o in todo.apply] == ["Service", "Deployment"]


def test_children_no_longer_desired_are_deleted():
    todo = plan([service(), deployment()], {"Service": live(service()), "Deployment": live(deployment()),
                                            "Ingress": {"kind": "Ingress", "metadata": {"name": "iris"}}})
    assert todo.delete == [("Ingress", "iris")]


def test_replicas_are_handed_over_before_the_operator_lets_go_of_them():
    desired = [deployment(replicas=None)]
    current = live(deployment(replicas=3, managed_replicas=True))
    todo = plan(desired, {"Deployment": current})
    assert todo.handover == [{"apiVersion": "apps/v1", "kind": "Deployment",
                              "metadata": {"name": "iris", "namespace": "ns"}, "spec": {"replicas": 3}}]
    assert [o["kind"] for o in todo.apply] == ["Deployment"]


def test_once_handed_over_an_autoscaled_deployment_is_left_alone():
    todo = plan([deployment(replicas=None)], {"Deployment": live(deployment(replicas=7, managed_replicas=False))})
    assert (todo.apply, todo.handover) == ([], [])


def test_drift_helpers():
    assert has_drifted(service(), None)
    assert not has_drifted({"spec": {"selector": {}}}, {"spec": {}})
    assert has_drifted({"spec": {"ports": [1, 2]}}, {"spec": {"ports": [1]}})
    assert not has_drifted({"spec": {"cpu": "1000m"}}, {"spec": {"cpu": "1"}})
    assert owns_field(deployment(managed_replicas=True), FIELD_MANAGER, ("spec", "replicas"))
    assert not owns_field(deployment(managed_replicas=False), FIELD_MANAGER, ("spec", "replicas"))
