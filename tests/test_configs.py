from dataclasses import dataclass

import pytest

from genprop import configs


@dataclass(frozen=True)
class Inner:
    a: int = 1


@dataclass(frozen=True)
class Outer:
    name: str = "x"
    sizes: tuple[int, ...] = (1, 2)
    lr: float = 1e-3
    inner: Inner = Inner()


def test_yaml_round_trip_with_overrides(tmp_path):
    url = str(tmp_path / "c.yaml")
    (tmp_path / "c.yaml").write_text("name: y\nsizes: [3, 4]\nlr: 1\ninner: {a: 5}\n")
    cfg = configs.load(Outer, url, overrides={"name": "z", "lr": None})
    assert cfg == Outer(name="z", sizes=(3, 4), lr=1.0, inner=Inner(a=5))
    configs.save_json(cfg, str(tmp_path / "c.json"))
    assert configs.load(Outer, str(tmp_path / "c.json")) == cfg


def test_unknown_key_names_file_and_key(tmp_path):
    (tmp_path / "bad.yaml").write_text("nmae: y\n")
    with pytest.raises(configs.ConfigError, match=r"bad.yaml.*unknown key\(s\) \['nmae'\]"):
        configs.load(Outer, str(tmp_path / "bad.yaml"))
    with pytest.raises(configs.ConfigError, match="missing.yaml: config file not found"):
        configs.load(Outer, str(tmp_path / "missing.yaml"))
