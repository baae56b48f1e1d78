"""The operator's settings, each declared once, as a dataclass field whose metadata is a `setting()`.

Every setting is a flag of `mlmodel-operator` and an environment variable, its twin: MLMODEL_OPERATOR_ and
the field's name in capitals (`--cluster-domain`, MLMODEL_OPERATOR_CLUSTER_DOMAIN). The flag wins over the
variable, the variable over the declared default. The one rule for empty values, for every setting: an empty
variable (or an empty flag value) is the same as none given, so the default applies; a manifest that sets a
variable to "" never gets an empty value. Booleans are `true` or `false` (any case), lists comma-separated;
anything else is an error that names the variable.

`Settings` holds what rendering reads (the values an MLModel may leave unset and the cluster decides); the
command's own options are declared the same way in cli.py.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

ENV_PREFIX = "MLMODEL_OPERATOR_"


def setting(help: str, *, flags: tuple[str, ...] = (), choices: tuple[str, ...] = ()) -> dict[str, Any]:
    """The metadata that makes a dataclass field a setting: a flag (`flags`, else --the-field-name) and an
    environment variable."""
    return {"help": help, "flags": flags, "choices": choices}


def env_name(field: dataclasses.Field) -> str:
    return ENV_PREFIX + field.name.upper()


def _declared(cls: type) -> list[dataclasses.Field]:
    return [field for field in dataclasses.fields(cls) if "help" in field.metadata]


def _kind(field: dataclasses.Field) -> str:
    """Which kind of value: "bool", "list" or "str", from the annotation (a string: annotations are postponed)."""
    annotation = str(field.type)
    return "bool" if annotation == "bool" else "list" if annotation.startswith("list") else "str"


def add_flags(parser: argparse.ArgumentParser | argparse._ArgumentGroup, cls: type) -> None:
    """One flag per setting of `cls`; unset flags stay None, so that `resolve` can tell them from values."""
    for field in _declared(cls):
        kind, help_text = _kind(field), field.metadata["help"]
        flags = field.metadata["flags"] or ("--" + field.name.replace("_", "-"),)
        metavar = flags[-1].lstrip("-").replace("-", "_").upper()
        options: dict[str, Any] = {"dest": field.name, "default": None}
        if kind == "bool" and field.default is True:
            flags = field.metadata["flags"] or ("--no-" + field.name.replace("_", "-"),)
            options.update(action="store_const", const=False, help=f"{help_text}; env {env_name(field)}=false")
        elif kind == "bool":
            options.update(action="store_const", const=True, help=f"{help_text}; env {env_name(field)}=true")
        elif kind == "list":
            options.update(
                action="append", metavar=metavar, help=f"{help_text}; env {env_name(field)}, comma-separated"
            )
        else:
            options.update(help=f"{help_text}; env {env_name(field)}")
            if field.metadata["choices"]:
                options.update(choices=field.metadata["choices"])
            else:
                options.update(metavar=metavar)
        parser.add_argument(*flags, **options)


def _parse(field: dataclasses.Field, text: str) -> Any:
    kind = _kind(field)
    if kind == "bool":
        if text.lower() not in ("true", "false"):
            raise ValueError(f"{env_name(field)}: expected true or false, got {text!r}")
        return text.lower() == "true"
    if kind == "list":
        return [item for item in text.split(",") if item]
    if field.metadata["choices"] and text not in field.metadata["choices"]:
        raise ValueError(f"{env_name(field)}: expected one of {', '.join(field.metadata['choices'])}, got {text!r}")
    return text


def resolve(cls: type, given: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> Any:
    """An instance of `cls`: each setting from `given` (parsed flags), else from its variable, else its default.
    Raises ValueError for a variable that does not parse."""
    env = os.environ if environ is None else environ
    values = {}
    for field in _declared(cls):
        if given.get(field.name) not in (None, "", []):
            values[field.name] = given[field.name]
        elif env.get(env_name(field)):  # unset and empty alike: the default
            values[field.name] = _parse(field, env[env_name(field)])
    return cls(**values)


@dataclass(frozen=True)
class Settings:
    """What rendering reads: the values an MLModel may leave unset and the cluster decides."""

    default_image: str = dataclasses.field(
        default="ghcr.io/mlmodel-operator/mlmodel-server:0.1.0",
        metadata=setting("the server image of an MLModel without spec.image"),
    )
    ingress_namespace: str = dataclasses.field(
        default="ingress-nginx",
        metadata=setting(
            "namespace of the ingress controller; the NetworkPolicy admits it unless "
            "spec.networkPolicy.ingressNamespaces says otherwise"
        ),
    )
    cluster_domain: str = dataclasses.field(
        default="cluster.local", metadata=setting("the cluster's DNS domain, for status.url")
    )
    monitoring_namespace: str = dataclasses.field(
        default="",
        metadata=setting(
            "namespace of the cluster's Prometheus; every MLModel's NetworkPolicy admits it to the pods' port"
        ),
    )
