"""Operator-wide settings: values an MLModel may leave unset and the cluster decides."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

ENV_PREFIX = "MLMODEL_OPERATOR_"


@dataclass(frozen=True)
class Settings:
    default_image: str = "ghcr.io/mlmodel-operator/mlmodel-server:0.1.0"
    # Namespace of the ingress controller; the NetworkPolicy admits it unless spec.networkPolicy.ingressNamespaces says otherwise.
    ingress_namespace: str = "ingress-nginx"
    cluster_domain: str = "cluster.local"
    # Namespace of the cluster's Prometheus; every MLModel's NetworkPolicy admits it to the pods' port ("": none).
    monitoring_namespace: str = ""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read MLMODEL_OPERATOR_DEFAULT_IMAGE, _INGRESS_NAMESPACE, _CLUSTER_DOMAIN and _MONITORING_NAMESPACE."""
        env = os.environ if environ is None else environ
        defaults = cls()
        return cls(
            default_image=env.get(ENV_PREFIX + "DEFAULT_IMAGE") or defaults.default_image,
            ingress_namespace=env.get(ENV_PREFIX + "INGRESS_NAMESPACE") or defaults.ingress_namespace,
            cluster_domain=env.get(ENV_PREFIX + "CLUSTER_DOMAIN") or defaults.cluster_domain,
            monitoring_namespace=env.get(ENV_PREFIX + "MONITORING_NAMESPACE") or defaults.monitoring_namespace,
        )
