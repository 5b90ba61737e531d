"""save_pretrained / from_pretrained: identical outputs, clear errors on broken checkpoints."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from genprop.losses import region_aware_loss
from genprop.models import CheckpointError, GenPropConfig, GenPropModel
from genprop.models.genprop_model import CONFIG_NAME, WEIGHTS_NAME
from tests.models.helpers import forward, make_batch, make_model


def _trained(name):
    model = make_model(name).train()
    opt = torch.optim.AdamW(model.trainable_parameters(), lr=1e-2, weight_decay=0.0)
    for seed in (0, 1):
        b = make_batch(model, name, seed=seed)
        region_aware_loss(forward(model, b), b["target"], b["latent_mask"], b["mpd_target"])["loss"].backward()
        opt.step()
        opt.zero_grad()
    return model.eval()


@pytest.mark.parametrize("name", ["wan", "svd"])
def test_save_load_identical_outputs(tmp_path, name):
    model = _trained(name)
    model.save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / CONFIG_NAME).read_text())
    assert cfg["backbone"] == model.config.backbone_kind
    loaded = GenPropModel.from_pretrained(str(tmp_path)).eval()
    assert loaded.config == model.config
    b = make_batch(model, name, seed=5)
    with torch.no_grad():
        a, c = forward(model, b), forward(loaded, b)
    assert torch.equal(a.prediction, c.prediction) and torch.equal(a.mask, c.mask)
    assert not torch.equal(a.prediction, model.backbone(b["model_input"], b["timestep"], b["cond"]))


def test_missing_tensor(tmp_path):
    make_model("wan").save_pretrained(tmp_path)
    tensors = load_file(tmp_path / WEIGHTS_NAME)
    tensors.pop(sorted(tensors)[0])
    save_file(tensors, tmp_path / WEIGHTS_NAME, metadata={"backbone": "wan"})
    with pytest.raises(CheckpointError, match="missing tensors"):
        GenPropModel.from_pretrained(str(tmp_path))


def test_wrong_shape(tmp_path):
    make_model("wan").save_pretrained(tmp_path)
    tensors = load_file(tmp_path / WEIGHTS_NAME)
    tensors["task_embedding.embedding.weight"] = torch.zeros(4, 3)
    save_file(tensors, tmp_path / WEIGHTS_NAME, metadata={"backbone": "wan"})
    with pytest.raises(CheckpointError, match="task_embedding.embedding.weight"):
        GenPropModel.from_pretrained(str(tmp_path))


def test_config_of_the_other_backbone(tmp_path):
    make_model("wan").save_pretrained(tmp_path)
    (tmp_path / CONFIG_NAME).write_text(json.dumps(GenPropConfig.tiny("svd").to_dict()))
    with pytest.raises(CheckpointError, match="saved for backbone 'wan'.*names 'svd'"):
        GenPropModel.from_pretrained(str(tmp_path))
    make_model("svd").save_pretrained(tmp_path / "svd")
    with pytest.raises(CheckpointError, match="expected 'wan'"):
        GenPropModel.from_pretrained(str(tmp_path / "svd"), expected_backbone="wan")
    with pytest.raises(CheckpointError, match="names backbone 'svd'"):
        GenPropModel.from_pretrained(str(tmp_path / "svd"), backbone=make_model("wan").backbone)


def test_not_a_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="genprop_config.json is missing"):
        GenPropModel.from_pretrained(str(tmp_path))


def test_no_pickle_files(tmp_path):
    make_model("svd").save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [CONFIG_NAME, WEIGHTS_NAME]


def test_backbone_from_local_pretrained_directory(tmp_path):
    """The from_pretrained path of the adapter: a tiny pipeline saved in diffusers' layout loads identically."""
    from dataclasses import replace

    from genprop.models.backbones import build_backbone

    model = make_model("svd_vae")
    bb = model.backbone
    bb.unet.save_pretrained(tmp_path / "unet")
    bb.latent_map.vae.save_pretrained(tmp_path / "vae")
    bb.image_encoder.save_pretrained(tmp_path / "image_encoder")
    loaded = build_backbone(replace(bb.config, pretrained=str(tmp_path)))
    b = make_batch(model, "svd_vae")
    with torch.no_grad():
        assert torch.equal(loaded(b["model_input"], b["timestep"], b["cond"]),
                           bb(b["model_input"], b["timestep"], b["cond"]))


def test_a_relative_backbone_path_is_relative_to_the_checkpoint(tmp_path):
    """Shipped weights name their backbone as ``../../procedural-backbone/model``: it resolves from the checkpoint
    directory, wherever the process runs."""
    import dataclasses
    import os

    from genprop.models.backbones.export import save_backbone

    model = _trained("wan")
    save_backbone(model.backbone, str(tmp_path / "backbone" / "model"))
    config = dataclasses.replace(model.config, backbone=dataclasses.replace(model.config.backbone,
                                                                            pretrained="../../backbone/model"))
    model.config = config
    model.save_pretrained(str(tmp_path / "genprop" / "model"))
    cwd = os.getcwd()
    os.chdir(tmp_path / "genprop")  # neither the repository nor the checkpoint's directory
    try:
        loaded = GenPropModel.from_pretrained(str(tmp_path / "genprop" / "model")).eval()
    finally:
        os.chdir(cwd)
    assert loaded.config.backbone.pretrained == str(tmp_path / "backbone" / "model")
    b = make_batch(model, "wan")
    with torch.no_grad():
        assert torch.equal(forward(loaded, b).prediction, forward(model, b).prediction)
