"""Settings declared once: each is a dataclass field carrying its flag, env twin, parser and help.

`build_parser` turns such a dataclass into an argparse parser and `parse` into an instance. The rules are the
same for every command: a flag wins over its env twin; an empty variable counts as unset; a bad value, from
the flag or the variable, is a usage error naming the flag.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off", ""})

Settings = TypeVar("Settings")


@dataclasses.dataclass(frozen=True)
class Option:
    flag: str
    env: str | None
    help: str
    parse: Callable[[str], Any] | None = None
    choices: tuple[str, ...] | None = None
    required: bool = False


def parse_bool(text: str) -> bool:
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def percent(text: str) -> int:
    value = positive_int(text)
    if value > 100:
        raise argparse.ArgumentTypeError(f"expected a percentage from 1 to 100, got {value}")
    return value


def comma_separated(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def setting(
    flag: str,
    env: str | None,
    default: Any,
    help: str,
    *,
    parse: Callable[[str], Any] | None = None,
    choices: tuple[str, ...] | None = None,
    required: bool = False,
) -> Any:
    """A dataclass field: `default` is the typed value used when neither the flag nor the variable is given."""
    option = Option(flag, env, help, parse, choices, required)
    return dataclasses.field(default=default, metadata={"option": option})


def options(settings_class: type) -> list[tuple[str, Option, Any]]:
    """(field name, option, default) of every declared setting, in declaration order."""
    return [
        (field.name, field.metadata["option"], field.default)
        for field in dataclasses.fields(settings_class)
        if "option" in field.metadata
    ]


def help_text(option: Option) -> str:
    if option.env is None:
        return option.help
    return f"{option.help} (env {option.env})" if option.help else f"env {option.env}"


def build_parser(settings_class: type, env: Mapping[str, str], parser: argparse.ArgumentParser) -> None:
    """Add one argument per setting. A set variable becomes the argument's (string) default, so argparse parses
    it like the flag and a flag given on the command line wins."""
    for name, option, default in options(settings_class):
        from_env = env.get(option.env) if option.env else None
        kwargs: dict[str, Any] = {"dest": name, "default": from_env or default, "help": help_text(option)}
        if option.parse is not None:
            kwargs["type"] = option.parse
        if option.choices is not None:
            kwargs["choices"] = option.choices
        if option.parse is parse_bool:
            kwargs.update(nargs="?", const=True)
        parser.add_argument(option.flag, **kwargs)


def parse(
    settings_class: type[Settings], argv: list[str], env: Mapping[str, str], parser: argparse.ArgumentParser
) -> Settings:
    """Parse flags over their env twins; bad usage goes to `parser.error` (argparse: exit status 2)."""
    build_parser(settings_class, env, parser)
    args = parser.parse_args(argv)
    for name, option, _default in options(settings_class):
        value = getattr(args, name)
        if option.required and not value:
            twin = f" (or {option.env})" if option.env else ""
            parser.error(f"{option.flag}{twin} is required")
        # argparse checks the choices of command-line values only; a variable's value gets the same check here.
        if option.choices is not None and value is not None and value not in option.choices:
            allowed = ", ".join(repr(choice) for choice in option.choices)
            parser.error(f"argument {option.flag}: invalid choice: {value!r} (choose from {allowed})")
    return settings_class(**vars(args))
