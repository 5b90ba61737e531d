"""Frozen-dataclass configs to and from YAML/JSON, with errors that name the file and the key.

Configs are plain frozen dataclasses (each with a ``tiny()`` preset where it makes sense); this
module only converts them. Unknown keys are an error, not silently ignored: a typo in a config
file must not train the wrong model for a day.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from typing import Any, Mapping, TypeVar

import yaml

from genprop import storage
from genprop.errors import GenPropError

T = TypeVar("T")


class ConfigError(GenPropError):
    """A config file or mapping that does not fit its dataclass."""


def to_dict(config: Any) -> dict:
    """A JSON-ready dict of a (possibly nested) dataclass; tuples become lists."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def _coerce(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint) and isinstance(value, Mapping):
        return from_dict(hint, value, where)
    if origin is tuple and isinstance(value, (list, tuple)):
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], where) for v in value)
        return tuple(value)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def from_dict(cls: type[T], data: Mapping[str, Any], where: str = "<config>") -> T:
    """Build dataclass ``cls`` from ``data``; missing keys take the dataclass defaults.

    Args:
        cls (type): a dataclass type.
        data (Mapping): keys are field names.
        where (str, default "<config>"): the file or row, for error messages.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a mapping for {cls.__name__}, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown} for {cls.__name__}; "
                          f"known keys: {sorted(fields)}")
    hints = typing.get_type_hints(cls)
    kwargs = {k: _coerce(v, hints.get(k), f"{where}:{k}") for k, v in data.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where}: {e}") from e


def read_yaml(url: str) -> Any:
    """Parse a YAML (or JSON) file from any URL; an empty file is ``{}``.

    Raises:
        ConfigError: the file is missing or is not valid YAML (the message names it).
    """
    try:
        return yaml.safe_load(storage.read_text(url)) or {}
    except FileNotFoundError:
        raise ConfigError(f"{url}: config file not found") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{url}: not valid YAML ({e})") from e


def load(cls: type[T], url: str, overrides: Mapping[str, Any] | None = None) -> T:
    """Read a YAML or JSON config file from any URL into ``cls``; ``overrides`` win over the file.

    Args:
        cls (type): a dataclass type.
        url (str): the config file (YAML is a superset of JSON, so both parse).
        overrides (Mapping | None, default None): values that replace the file's (None values are
            ignored, so unset command-line flags do not clobber the file).
    """
    data = read_yaml(url)
    if overrides:
        data = {**data, **{k: v for k, v in overrides.items() if v is not None}}
    return from_dict(cls, data, where=url)


def save_json(config: Any, url: str) -> None:
    """Write ``config`` as indented JSON to ``url`` (atomically)."""
    storage.write_text(url, json.dumps(to_dict(config), indent=2, sort_keys=True) + "\n")
