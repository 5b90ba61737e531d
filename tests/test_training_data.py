"""Library side of training (no Ray): shard streaming and its resume position, the checkpoint format, the
backbone export for ``i2v``, and backbone weights from an object-store URL."""

from __future__ import annotations

import dataclasses
import json
import os

import pytest
import torch

from genprop.models.backbones import SVDBackboneConfig, WanBackboneConfig, build_backbone
from genprop.models.backbones.export import load_backbone
from genprop.shards import ShardWriter, sample_tar_bytes
from genprop.training import TrainConfig, Trainer
from genprop.training.checkpoint import load_train_state, read_ema_weights, save_train_state
from genprop.training.shard_stream import ShardStream, StreamPosition


def _write_shards(root, n_shards=3, per_shard=4) -> list[str]:
    urls = []
    for s in range(n_shards):
        url = str(root / "shards" / f"shard-{s:06d}.tar")
        with ShardWriter(url) as w:
            for i in range(per_shard):
                w.add(sample_tar_bytes(f"s{s}_i{i}", {"x.txt": f"{s},{i}".encode()}))
            w.commit()
        urls.append(url)
    return urls


def _keys(stream, n):
    it = iter(stream)
    return [next(it)[1]["__key__"] for _ in range(n)]


def test_stream_is_deterministic_per_seed_and_epoch_and_workers_read_their_own_shards(tmp_path):
    urls = _write_shards(tmp_path)
    ident = dict
    a = _keys(ShardStream(urls, 0, 2, seed=1, decode=ident, shuffle_buffer=3), 16)
    assert a == _keys(ShardStream(urls, 0, 2, seed=1, decode=ident, shuffle_buffer=3), 16)
    assert a != _keys(ShardStream(urls, 0, 2, seed=2, decode=ident, shuffle_buffer=3), 16)
    # within an epoch the two workers read disjoint shards (3 shards: 2 + 1 of 4 samples each)
    b = _keys(ShardStream(urls, 1, 2, seed=1, decode=ident, shuffle_buffer=3), 4)
    first_epoch_a = {k.split("_")[0] for k in a[:8]}
    assert len(first_epoch_a) == 2 and first_epoch_a.isdisjoint({k.split("_")[0] for k in b})
    # fewer shards than workers: every sample goes to exactly one worker
    one = urls[:1]
    w0 = _keys(ShardStream(one, 0, 2, seed=0, decode=ident), 2)
    w1 = _keys(ShardStream(one, 1, 2, seed=0, decode=ident), 2)
    assert sorted(w0 + w1) == [f"s0_i{i}" for i in range(4)]


def test_stream_resumes_at_its_position(tmp_path):
    urls = _write_shards(tmp_path)
    full = ShardStream(urls, 0, 1, seed=3, decode=dict, shuffle_buffer=4)
    it = iter(full)
    items = [next(it) for _ in range(20)]  # crosses an epoch boundary (12 samples an epoch)
    pos = items[13][0]
    assert pos == StreamPosition(1, 2)
    resumed = ShardStream(urls, 0, 1, seed=3, decode=dict, shuffle_buffer=4, start=pos)
    assert _keys(resumed, 6) == [s["__key__"] for _, s in items[14:20]]


def _tiny_genprop():
    from genprop.models import GenPropConfig, GenPropModel

    return GenPropModel(GenPropConfig.tiny("wan"))


def test_checkpoint_round_trip_continues_exactly_without_pickle(tmp_path):
    from tests.test_training import training_batch

    cfg = TrainConfig.tiny()
    batches = [training_batch(_tiny_genprop().backbone, seed=s) for s in range(4)]
    a = Trainer(_tiny_genprop(), cfg, rank=0)
    for b in batches[:2]:
        a.train_step([b])
    ranks = [{"generator": a.generator.get_state(), "position": [0, 2], "skipped": 1},
             {"generator": torch.Generator().manual_seed(9).get_state(), "position": [0, 3], "skipped": 0}]
    save_train_state(str(tmp_path), a, ranks, extra={"note": "x"})
    for b in batches[2:]:
        a.train_step([b])
    b_tr = Trainer(_tiny_genprop(), cfg, rank=0)
    mine = load_train_state(str(tmp_path), b_tr, rank=0)
    assert mine == {"position": [0, 2], "skipped": 1} and b_tr.step == 2
    for b in batches[2:]:
        b_tr.train_step([b])
    for k, p in a.named_trainable.items():
        assert torch.equal(p, b_tr.named_trainable[k]), k
    for k, w in a.ema_weights().items():
        assert torch.equal(w, b_tr.ema_weights()[k]), k
    assert set(read_ema_weights(str(tmp_path))) == set(a.named_trainable)
    state = json.load(open(tmp_path / "state.json"))
    assert state["run"] == {"note": "x"} and state["ranks"][1]["position"] == [0, 3]


@pytest.mark.parametrize("config", [WanBackboneConfig.tiny(), WanBackboneConfig.tiny(encoders=True),
                                    SVDBackboneConfig.tiny()], ids=["wan-null-text", "wan-encoders", "svd-null-image"])
def test_i2v_backbone_export_loads_with_the_adapter_and_gives_identical_outputs(config, tmp_path):
    from tests.test_training import training_batch

    backbone = build_backbone(config)
    trainer = Trainer(backbone, TrainConfig.tiny(objective="i2v", lr=1e-2, ema_decay=0.5))
    batch = training_batch(backbone, frames=5)
    for _ in range(2):
        trainer.train_step([batch])
    ema = trainer.ema_weights()
    for n in ("null_text_embedding", "null_image_embedding"):  # make the adapter's own tensors non-trivial
        if n in ema:
            ema[n] = torch.randn_like(ema[n])
    live = {k: v.clone() for k, v in backbone.state_dict().items()}
    backbone.save_pretrained(str(tmp_path / "bb"), weights=ema)
    assert all(torch.equal(v, backbone.state_dict()[k]) for k, v in live.items())  # live weights untouched
    loaded = load_backbone(str(tmp_path / "bb"))
    assert loaded.config == dataclasses.replace(config, pretrained=str(tmp_path / "bb"))
    backbone.load_state_dict(ema, strict=False)
    extra = [n for n in ("null_text_embedding", "null_image_embedding") if hasattr(backbone, n)]
    for n in extra:  # restored from the extras file
        assert torch.equal(getattr(loaded, n), getattr(backbone, n)) and getattr(loaded, n).abs().sum() > 0, n
    t = torch.full((2,), 0.5)
    with torch.no_grad():
        assert torch.equal(loaded(batch["target_latents"], t, batch["cond"]),
                           backbone.eval()(batch["target_latents"], t, batch["cond"]))


def test_backbone_weights_from_an_object_store_url_are_cached_once_per_node(s3_bucket, tmp_path):
    from genprop.models.weights_cache import resolve_pretrained
    from tests.conftest import upload_tree

    backbone = build_backbone(WanBackboneConfig.tiny())
    backbone.save_pretrained(str(tmp_path / "bb"))
    upload_tree(str(tmp_path / "bb"), s3_bucket + "/weights/wan-tiny")
    cache = str(tmp_path / "cache")
    local = resolve_pretrained(s3_bucket + "/weights/wan-tiny", cache_dir=cache)
    assert os.path.isfile(os.path.join(local, ".complete"))
    mtime = os.path.getmtime(os.path.join(local, ".complete"))
    assert resolve_pretrained(s3_bucket + "/weights/wan-tiny", cache_dir=cache) == local
    assert os.path.getmtime(os.path.join(local, ".complete")) == mtime  # not downloaded again
    assert resolve_pretrained(str(tmp_path / "bb")) == str(tmp_path / "bb")  # a local folder as is
    assert resolve_pretrained("org/model-id") == "org/model-id"  # a hub id as is
    loaded = build_backbone(dataclasses.replace(WanBackboneConfig.tiny(), pretrained=local))
    for k, v in backbone.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k]), k


@pytest.mark.timeout(300)
# FSDP2 warns when a wrapped unit returns a view (an in-place op on it would skip the all-gather): every unit returns
# tensors of its own (genprop.models.unit_outputs), so the warning is an error here
@pytest.mark.filterwarnings("error:FSDP2-wrapped module.*returned a view tensor:UserWarning")
@pytest.mark.parametrize("shard_backbone", [False, True])
def test_fsdp_shards_the_trainable_parts_keeps_the_backbone_and_resumes(tmp_path, shard_backbone):
    """One gloo process on CPU: FSDP2 wraps GenProp (the frozen backbone replicated, or its blocks sharded too),
    trains like the plain model, and its gathered checkpoint resumes into a freshly sharded model."""
    import torch.distributed as dist

    from genprop.models import GenPropConfig, GenPropModel
    from genprop.training.fsdp import is_sharded, shard_model
    from tests.ray_cluster import free_port
    from tests.test_training import training_batch

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()))
    dist.init_process_group("gloo", rank=0, world_size=1)
    try:
        cfg = TrainConfig.tiny(cond_drop_prob=0.0)
        batches = [training_batch(GenPropModel(GenPropConfig.tiny("wan")).backbone, seed=s) for s in range(3)]

        def sharded():
            m = GenPropModel(GenPropConfig.tiny("wan"))
            for p in m.trainable_parameters():
                p.requires_grad_(True)
            return shard_model(m, "genprop", torch.device("cpu"), shard_backbone)

        plain = Trainer(GenPropModel(GenPropConfig.tiny("wan")), cfg)
        fsdp = Trainer(sharded(), cfg)
        model = fsdp.model
        assert all(is_sharded(p) for p in model.sce.parameters())
        assert not any(p.requires_grad for p in model.backbone.parameters())
        blocks = {id(p) for b in model.backbone.denoiser_blocks() for p in b.parameters()}
        assert all(is_sharded(p) == (shard_backbone and id(p) in blocks) for p in model.backbone.parameters())
        for b in batches[:2]:
            want, got = plain.train_step([b]), fsdp.train_step([b])
            for key in ("loss", "grad_norm"):
                assert got[key] == pytest.approx(want[key], rel=1e-5), key
        # a sharded block runs on its gathered flat buffer: gradients summed in another order (1e-6 relative),
        # which Adam's normalised step turns into up to ~1e-4 on elements whose gradient is near zero
        tol = dict(rtol=1e-5, atol=5e-4) if shard_backbone else dict(rtol=1e-5, atol=1e-6)
        for k, w in plain.ema_weights().items():
            torch.testing.assert_close(fsdp.ema_weights()[k], w, **tol)
        save_train_state(str(tmp_path), fsdp, [{"generator": fsdp.generator.get_state(), "position": [0, 2]}])
        fsdp.train_step([batches[2]])
        resumed = Trainer(sharded(), cfg)
        load_train_state(str(tmp_path), resumed, rank=0)
        resumed.train_step([batches[2]])
        for k, w in fsdp.ema_weights().items():
            assert torch.equal(resumed.ema_weights()[k], w), k
    finally:
        dist.destroy_process_group()
