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


def test_a_number_yaml_reads_as_a_string_is_a_number_and_a_word_is_an_error(tmp_path):
    (tmp_path / "c.yaml").write_text("lr: 1e-8\n")  # PyYAML: no dot, so the string "1e-8"
    assert configs.load(Outer, str(tmp_path / "c.yaml")).lr == 1e-8
    (tmp_path / "bad.yaml").write_text("lr: fast\n")
    with pytest.raises(configs.ConfigError, match=r"bad.yaml:lr: 'fast' is not a number"):
        configs.load(Outer, str(tmp_path / "bad.yaml"))


def test_unknown_key_names_file_and_key(tmp_path):
    (tmp_path / "bad.yaml").write_text("nmae: y\n")
    with pytest.raises(configs.ConfigError, match=r"bad.yaml.*unknown key\(s\) \['nmae'\]"):
        configs.load(Outer, str(tmp_path / "bad.yaml"))
    with pytest.raises(configs.ConfigError, match="missing.yaml: config file not found"):
        configs.load(Outer, str(tmp_path / "missing.yaml"))


def test_a_train_section_in_an_earlier_shape_names_where_each_field_moved():
    from genprop.training.job_config import TrainJobConfig

    with pytest.raises(configs.ConfigError) as e:
        configs.from_dict(TrainJobConfig, {"sce_blocks": 1, "task_dim": 16, "fail_at_step": 3,
                                           "train": {"loss": {"gate_weight": 1.0}}}, where="tiny.yaml:train")
    msg = str(e.value)
    assert msg.startswith("tiny.yaml:train: TrainJobConfig in an earlier shape: ") and "\n" not in msg
    for old, new in [("sce_blocks", "model.sce_blocks"), ("task_dim", "model.task_dim"),
                     ("train.loss.gate_weight", "model.anchoring.gate_weight"), ("fail_at_step", "after_step")]:
        assert f"{old} moved to" in msg and new in msg
    # the current shape: the model section is a GenPropConfig without its backbone
    job = configs.from_dict(TrainJobConfig, {"model": {"sce_blocks": 1, "task_dim": 16,
                                                       "anchoring": {"flow": True}}})
    assert job.model.sce_blocks == 1 and job.model.anchoring.flow and job.model.backbone is None
    with pytest.raises(configs.ConfigError, match="leave it out of a run config's model section"):
        configs.from_dict(TrainJobConfig, {"model": {"backbone": {"num_steps": 2}}})


def test_a_global_batch_that_does_not_split_is_refused_by_the_one_batch_layout_rule():
    from genprop.training import TrainConfig
    from genprop.training.job_config import TrainJobConfig

    job = TrainJobConfig(global_batch_size=8, num_workers=2, train=TrainConfig.tiny(grad_accum=2))
    assert job.layout().micro_batch == 2
    with pytest.raises(ValueError, match="a global batch of 6 does not split into 2 workers x 2 micro-batches"):
        TrainJobConfig(global_batch_size=6, num_workers=2, train=TrainConfig.tiny(grad_accum=2))
    with pytest.raises(ValueError, match="batch_size 3 contradicts global_batch_size 8 over 2 x 2 micro-batches"):
        TrainJobConfig(global_batch_size=8, batch_size=3, num_workers=2, train=TrainConfig.tiny(grad_accum=2))
    with pytest.raises(ValueError, match="global_batch_size must be >= 0"):
        TrainJobConfig(global_batch_size=-4)
