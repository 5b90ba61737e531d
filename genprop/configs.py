"""Frozen-dataclass configs to and from YAML/JSON, with errors that name the file and the key.

Configs are plain frozen dataclasses (each with a ``tiny()`` preset where it makes sense); this
module only converts them. Unknown keys are an error, not silently ignored: a typo in a config
file must not train the wrong model for a day.
"""

from __future__ import annotations

import dataclasses
import json
import types
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
    if origin in (typing.Union, types.UnionType) and isinstance(value, Mapping):
        # an optional section (``X | None``): a mapping is the dataclass among the union's members
        classes = [a for a in typing.get_args(hint) if dataclasses.is_dataclass(a)]
        if len(classes) == 1:
            return from_dict(classes[0], value, where)
    if dataclasses.is_dataclass(hint) and isinstance(value, Mapping):
        return from_dict(hint, value, where)
    if origin is tuple and isinstance(value, (list, tuple)):
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], where) for v in value)
        return tuple(value)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str):
        # YAML 1.1 (PyYAML) reads 1e-8 without a dot as a string: a number written so is still a number
        try:
            return float(value)
        except ValueError:
            raise ConfigError(f"{where}: {value!r} is not a number") from None
    return value


def _moved_fields(cls: type, data: Mapping) -> list[str]:
    """"<old key> moved to <where>" for each field of an earlier shape (``cls.MOVED``) that ``data`` holds."""
    out = []
    for path, dest in getattr(cls, "MOVED", {}).items():
        node: Any = data
        for part in path.split("."):
            node = node.get(part, _ABSENT) if isinstance(node, Mapping) else _ABSENT
        if node is not _ABSENT:
            out.append(f"{path} moved to {dest}")
    return sorted(out)


_ABSENT = object()


def from_dict(cls: type[T], data: Mapping[str, Any], where: str = "<config>") -> T:
    """Build dataclass ``cls`` from ``data``; missing keys take the dataclass defaults.

    A dataclass may name the fields of its earlier shapes in a ``MOVED`` class variable (old key, dotted for a
    nested section's, -> where it lives now); a mapping that uses one fails with one line naming each.

    Args:
        cls (type): a dataclass type.
        data (Mapping): keys are field names.
        where (str, default "<config>"): the file or row, for error messages.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a mapping for {cls.__name__}, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    moved = _moved_fields(cls, data)
    if moved:
        raise ConfigError(f"{where}: {cls.__name__} in an earlier shape: " + "; ".join(moved))
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


def _merge(base: Mapping, over: Mapping) -> dict:
    """``base`` with ``over``'s keys over it, nested mappings merged key by key (other values replaced)."""
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), Mapping) else v
    return out


def apply_variant(data: Mapping, url: str, variant: str | None = None) -> dict:
    """A config file's mapping with its named variant applied.

    A file of variants has two keys: ``base`` (a whole config) and ``variants`` (name -> only the fields that
    variant changes, nested sections merged key by key). One level: a variant is the base plus its fields,
    never another variant. Any other file is its own base and has no variants.

    Args:
        data (Mapping): the parsed file. url (str): the file, for errors.
        variant (str | None): a variant's name; None = the base.

    Raises:
        ConfigError: an unknown variant (the known ones are listed), or a variant of a file without variants.
    """
    if set(data) == {"base", "variants"}:
        base, variants = data["base"] or {}, data["variants"] or {}
    else:
        base, variants = data, {}
    if variant is None:
        return dict(base)
    if variant not in variants:
        raise ConfigError(f"{url}: no variant {variant!r}; variants: {sorted(variants) or 'none'}")
    return _merge(base, variants[variant] or {})


def load(cls: type[T], url: str, overrides: Mapping[str, Any] | None = None, variant: str | None = None) -> T:
    """Read a YAML or JSON config file from any URL into ``cls``; ``overrides`` win over the file.

    Args:
        cls (type): a dataclass type.
        url (str): the config file (YAML is a superset of JSON, so both parse).
        overrides (Mapping | None, default None): values that replace the file's (None values are
            ignored, so unset command-line flags do not clobber the file).
        variant (str | None, default None): a named variant of a file of variants (:func:`apply_variant`).
    """
    data = apply_variant(read_yaml(url), url, variant)
    where = url if variant is None else f"{url} (variant {variant})"
    if overrides:
        data = {**data, **{k: v for k, v in overrides.items() if v is not None}}
    return from_dict(cls, data, where=where)


def save_json(config: Any, url: str) -> None:
    """Write ``config`` as indented JSON to ``url`` (atomically)."""
    storage.write_text(url, json.dumps(to_dict(config), indent=2, sort_keys=True) + "\n")
