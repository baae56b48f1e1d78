"""Pure tests of the reconcile plan: what gets applied, handed over and deleted."""

import copy

from mlmodel_operator.drift import fields_worth_keeping, has_drifted, owns_field, removal_patch
from mlmodel_operator.kube import FIELD_MANAGER
from mlmodel_operator.reconcile import Plan, plan

# What the Deployment controller writes to a child's status: never a hand edit.
CONTROLLER_STATUS_ENTRY = {
    "manager": "kube-controller-manager",
    "operation": "Update",
    "subresource": "status",
    "fieldsV1": {"f:status": {}},
}


def deployment(replicas: int | None = 2, image: str = "img:1", managed_replicas: bool = False) -> dict:
    spec = {
        "template": {
            "spec": {"containers": [{"name": "server", "image": image, "resources": {"limits": {"cpu": "0.5"}}}]}
        }
    }
    if replicas is not None:
        spec["replicas"] = replicas
    fields = {"f:spec": {"f:replicas": {}, "f:template": {}}} if managed_replicas else {"f:spec": {"f:template": {}}}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "iris",
            "namespace": "ns",
            "managedFields": [{"manager": FIELD_MANAGER, "operation": "Apply", "fieldsV1": fields}],
        },
        "spec": spec,
    }


def service() -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "iris", "namespace": "ns"},
        "spec": {"ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
    }


def live(obj: dict, **changes) -> dict:
    """What the API server returns: the applied fields plus defaults it added."""
    copy = {**obj, "metadata": {**obj["metadata"], "resourceVersion": "7", "uid": "u"}, "status": {"x": 1}}
    if obj["kind"] == "Service":
        copy["spec"] = {
            **obj["spec"],
            "clusterIP": "10.0.0.1",
            "ports": [{**obj["spec"]["ports"][0], "protocol": "TCP"}],
        }
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
    todo = plan(
        [service(), deployment()],
        {
            "Service": live(service()),
            "Deployment": live(deployment()),
            "Ingress": {"kind": "Ingress", "metadata": {"name": "iris"}},
        },
    )
    assert todo.delete == [("Ingress", "iris")]


def test_replicas_are_handed_over_before_the_operator_lets_go_of_them():
    desired = [deployment(replicas=None)]
    current = live(deployment(replicas=3, managed_replicas=True))
    todo = plan(desired, {"Deployment": current})
    assert todo.handover == [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "iris", "namespace": "ns"},
            "spec": {"replicas": 3},
        }
    ]
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


# --- hand edits that add fields: other managers' managedFields ---------------------------------


def hand_edited(obj: dict, manager: str, fields: dict, **changes) -> dict:
    """`obj` as live after a hand edit by `manager` that owns `fields` (`obj`'s own managedFields are what
    the operator owns; the rendered object itself carries none)."""
    edited = copy.deepcopy(live(obj, **changes))
    edited["metadata"] = {
        **edited["metadata"],
        "managedFields": [
            *obj["metadata"].get("managedFields", []),
            {"manager": manager, "operation": "Update", "fieldsV1": fields},
            # Controllers write through subresources, and the top-level metadata is open to every tool.
            CONTROLLER_STATUS_ENTRY,
            {
                "manager": "kube-controller-manager",
                "operation": "Update",
                "fieldsV1": {"f:metadata": {"f:annotations": {"f:deployment.kubernetes.io/revision": {}}}},
            },
        ],
    }
    return edited


def rendered_deployment(**options) -> dict:
    obj = deployment(**options)
    obj["metadata"] = {k: v for k, v in obj["metadata"].items() if k != "managedFields"}
    return obj


def test_a_label_added_by_hand_to_the_pod_template_is_removed():
    rendered = deployment()
    rendered["spec"]["template"]["metadata"] = {"labels": {"app.kubernetes.io/name": "iris"}}
    current = hand_edited(
        rendered, "kubectl-label", {"f:spec": {"f:template": {"f:metadata": {"f:labels": {"f:team": {}}}}}}
    )
    current["spec"]["template"]["metadata"]["labels"]["team"] = "x"

    todo = plan([rendered], {"Deployment": current})

    assert todo.repair == [(rendered, {"spec": {"template": {"metadata": {"labels": {"team": None}}}}})]
    assert todo.apply == [rendered]


def test_a_service_port_changed_by_hand_is_replaced_by_the_rendered_list():
    rendered = service()
    current = hand_edited(
        rendered,
        "kubectl-patch",
        {
            "f:spec": {
                "f:ports": {'k:{"port":81,"protocol":"TCP"}': {".": {}, "f:name": {}, "f:port": {}, "f:targetPort": {}}}
            }
        },
    )
    current["spec"]["ports"] = [{"name": "http", "port": 81, "protocol": "TCP", "targetPort": "http"}]

    todo = plan([rendered], {"Service": current})

    assert todo.repair == [(rendered, {"spec": {"ports": rendered["spec"]["ports"]}})]


def test_fields_set_to_the_rendered_value_defaults_and_scaled_replicas_are_no_addition():
    rendered = rendered_deployment(replicas=None)
    current = hand_edited(
        deployment(replicas=None),
        "kubectl-edit",
        {
            "f:spec": {
                "f:replicas": {},
                "f:template": {"f:spec": {"f:containers": {'k:{"name":"server"}': {"f:image": {}}}}},
            }
        },
    )
    current["spec"] = {**current["spec"], "replicas": 4, "revisionHistoryLimit": 10}  # HPA's and a default

    assert plan([rendered], {"Deployment": current}) == plan([], {}) == Plan([], [], [], [])


def test_an_env_entry_and_a_field_added_inside_a_container_replace_the_container_list():
    rendered = deployment()
    current = hand_edited(
        rendered,
        "kubectl-edit",
        {
            "f:spec": {
                "f:hostNetwork": {},
                "f:template": {
                    "f:spec": {
                        "f:containers": {
                            'k:{"name":"server"}': {"f:env": {'k:{"name":"DEBUG"}': {".": {}, "f:name": {}}}}
                        }
                    }
                },
            }
        },
    )

    patch = plan([rendered], {"Deployment": current}).repair[0][1]

    assert patch == {
        "spec": {
            "hostNetwork": None,
            "template": {"spec": {"containers": rendered["spec"]["template"]["spec"]["containers"]}},
        }
    }


def test_every_list_patch_sends_each_rendered_list_whole():
    rendered = {"kind": "Service", "spec": {"ports": [1], "selector": {"a": "b"}, "x": {"y": [2]}}}
    assert removal_patch(rendered, [], every_list=True) == {"spec": {"ports": [1], "x": {"y": [2]}}}


def test_a_key_added_to_an_atomic_map_is_removed():
    rendered = service()
    rendered["spec"]["selector"] = {"app.kubernetes.io/name": "mlmodel"}
    current = hand_edited(rendered, "kubectl-patch", {"f:spec": {"f:selector": {}}})
    current["spec"]["selector"] = {"app.kubernetes.io/name": "mlmodel", "team": "x"}

    assert plan([rendered], {"Service": current}).repair == [(rendered, {"spec": {"selector": {"team": None}}})]


def test_the_index_keeps_of_other_managers_only_what_names_additions():
    entries = [
        {"manager": FIELD_MANAGER, "operation": "Apply", "fieldsV1": {"f:metadata": {"f:labels": {}}, "f:spec": {}}},
        CONTROLLER_STATUS_ENTRY,
        {
            "manager": "kube-controller-manager",
            "operation": "Update",
            "time": "t",
            "fieldsV1": {"f:metadata": {"f:annotations": {"f:deployment.kubernetes.io/revision": {}}}},
        },
        {
            "manager": "kubectl-edit",
            "operation": "Update",
            "time": "t",
            "fieldsV1": {"f:metadata": {"f:labels": {"f:x": {}}}, "f:spec": {"f:paused": {}}},
        },
    ]
    assert fields_worth_keeping(entries, FIELD_MANAGER) == [
        entries[0],
        {"manager": "kubectl-edit", "operation": "Update", "fieldsV1": {"f:spec": {"f:paused": {}}}},
    ]
