"""The operator's settings: one declaration gives every flag its environment twin, with one rule for empty values."""

from __future__ import annotations

import dataclasses

import pytest

from mlmodel_operator.cli import Options, parse_args
from mlmodel_operator.settings import Settings, env_name

EVERY_VARIABLE = [
    env_name(field) for cls in (Options, Settings) for field in dataclasses.fields(cls) if "help" in field.metadata
]


def test_every_setting_has_a_flag_and_a_variable_and_an_empty_variable_means_the_default():
    assert len(EVERY_VARIABLE) == 13
    unset = parse_args([], environ={})
    assert parse_args([], environ=dict.fromkeys(EVERY_VARIABLE, "")) == unset
    assert unset.settings == Settings() and unset.log_format == "json" and unset.leader_election is True
    assert unset.namespaces == [] and unset.liveness is None


def test_a_flag_wins_over_its_variable_and_the_variable_over_the_default():
    environ = {"MLMODEL_OPERATOR_CLUSTER_DOMAIN": "env.example", "MLMODEL_OPERATOR_LEASE_NAME": "from-env"}
    options = parse_args(["--cluster-domain", "flag.example"], environ=environ)
    assert options.settings.cluster_domain == "flag.example"
    assert options.lease_name == "from-env"
    assert (
        parse_args(["--no-leader-election"], environ={"MLMODEL_OPERATOR_LEADER_ELECTION": "true"}).leader_election
        is False
    )
    assert parse_args([], environ={"MLMODEL_OPERATOR_LEADER_ELECTION": "FALSE"}).leader_election is False
    assert parse_args([], environ={"MLMODEL_OPERATOR_DEFAULT_IMAGE": "img:1"}).settings == Settings(
        default_image="img:1"
    )


def test_namespaces_are_a_repeatable_flag_or_a_comma_separated_variable_and_all_namespaces_wins():
    environ = {"MLMODEL_OPERATOR_NAMESPACES": "models,,team-*"}
    assert parse_args([], environ=environ).namespaces == ["models", "team-*"]
    assert parse_args(["-n", "a", "--namespace", "b"], environ=environ).namespaces == ["a", "b"]
    assert parse_args(["-A"], environ=environ).namespaces == []


@pytest.mark.parametrize(
    ("argv", "environ", "message"),
    [
        ([], {"MLMODEL_OPERATOR_LEADER_ELECTION": "no"}, "MLMODEL_OPERATOR_LEADER_ELECTION: expected true or false"),
        ([], {"MLMODEL_OPERATOR_LOG_FORMAT": "xml"}, "MLMODEL_OPERATOR_LOG_FORMAT: expected one of json, plain"),
        (["-A", "-n", "models"], {}, "--namespace and --all-namespaces exclude each other"),
    ],
)
def test_a_value_that_does_not_parse_is_a_usage_error_naming_it(argv, environ, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_args(argv, environ=environ)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
