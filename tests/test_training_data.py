"""Library side of training (no Ray): the sample index and every step's global batch, the checkpoint format, the
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
from genprop.training.job_config import TrainJobConfig
from genprop.training.checkpoint import load_train_state, read_ema_weights, save_train_state
from genprop.errors import DataError
from genprop.training.global_batches import BatchLayout, GlobalBatchReader
from genprop.training.sample_index import index_shards, read_sample


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


def _step_keys(refs, layout, step, seed=1, start=0):
    """{rank: keys of its micro-batches} of ``step`` (readers started at ``start``)."""
    out = {}
    for rank in range(layout.world):
        reader = GlobalBatchReader(refs, seed, layout, rank, decode=dict, collate=lambda s: [x["__key__"] for x in s],
                                   start=start)
        try:
            for _ in range((step - start // layout.global_batch) * layout.grad_accum):
                reader.next()
            out[rank] = [k for _ in range(layout.grad_accum) for k in reader.next()[0]]
        finally:
            reader.close()
    return out


def test_index_reads_each_sample_by_its_byte_range(tmp_path):
    urls = _write_shards(tmp_path)
    refs = index_shards(urls)  # no manifest part here: from the tar headers
    assert [r.key for r in refs] == [f"s{s}_i{i}" for s in range(3) for i in range(4)]
    assert read_sample(refs[5]) == {"__key__": "s1_i1", "x.txt": b"1,1"}
    with pytest.raises(DataError, match="s1_i2"):  # an index that points at another sample's bytes
        read_sample(dataclasses.replace(refs[5], key="s1_i2"))


@pytest.mark.parametrize("world, accum", [(2, 1), (4, 1), (2, 2), (1, 4)])
def test_every_step_trains_the_same_samples_for_any_worker_count(tmp_path, world, accum):
    refs = index_shards(_write_shards(tmp_path))  # 12 samples: epochs of 3 steps of 4
    one = BatchLayout(4, 1, 1)
    for step in range(5):  # across an epoch boundary
        want = _step_keys(refs, one, step)[0]
        got = _step_keys(refs, BatchLayout(4, world, accum), step)
        assert sorted(k for keys in got.values() for k in keys) == sorted(want), step
        assert len({k for keys in got.values() for k in keys}) == 4  # no sample twice in a step
    epoch = [k for step in range(3) for k in _step_keys(refs, one, step)[0]]
    assert sorted(epoch) == sorted(r.key for r in refs)  # an epoch is every sample once
    assert epoch != [k for step in range(3) for k in _step_keys(refs, one, step, seed=2)[0]]
    # a resumed reader starts at the samples consumed: step 4 as the uninterrupted run
    assert _step_keys(refs, BatchLayout(4, world, accum), 4, start=8) == _step_keys(refs, BatchLayout(4, world, accum), 4)
    with pytest.raises(ValueError, match="does not split"):
        BatchLayout(4, 3, 1)


def test_a_bad_sample_is_replaced_by_the_next_readable_one_for_every_worker_count(tmp_path):
    refs = index_shards(_write_shards(tmp_path))
    bad = refs[6].key

    def decode(raw):
        if raw["__key__"] == bad:
            raise ValueError("garbled")
        return raw

    def keys(layout):
        found, skipped = [], 0
        for rank in range(layout.world):
            reader = GlobalBatchReader(refs, 1, layout, rank, decode, lambda s: [x["__key__"] for x in s])
            try:
                found += [k for _ in range(3 * layout.grad_accum) for k in reader.next()[0]]
                skipped += reader.skipped
                assert all(bad in r for r in reader.skip_reasons)
            finally:
                reader.close()
        return sorted(found), skipped

    one, two = keys(BatchLayout(4, 1, 1)), keys(BatchLayout(4, 2, 1))
    assert one[0] == two[0] and bad not in one[0] and one[1] == two[1] == 1
    assert refs[7].key in one[0] and one[0].count(refs[7].key) == 2  # its neighbour in the shard takes its place


def _tiny_genprop():
    from genprop.models import GenPropConfig, GenPropModel

    return GenPropModel(GenPropConfig.tiny("wan"))


def test_checkpoint_round_trip_continues_exactly_without_pickle(tmp_path):
    from tests.test_training import training_batch

    cfg = TrainConfig.tiny()
    batches = [training_batch(_tiny_genprop().backbone, seed=s) for s in range(4)]
    a = Trainer(_tiny_genprop(), cfg)
    for b in batches[:2]:
        a.train_step([b])
    save_train_state(str(tmp_path), a, {"samples": 4, "skipped": 1}, extra={"note": "x"})
    for b in batches[2:]:
        a.train_step([b])
    b_tr = Trainer(_tiny_genprop(), cfg)
    data = load_train_state(str(tmp_path), b_tr)
    assert data == {"samples": 4, "skipped": 1} and b_tr.step == 2
    for b in batches[2:]:
        b_tr.train_step([b])
    for k, p in a.named_trainable.items():
        assert torch.equal(p, b_tr.named_trainable[k]), k
    for k, w in a.ema_weights().items():
        assert torch.equal(w, b_tr.ema_weights()[k]), k
    assert set(read_ema_weights(str(tmp_path))) == set(a.named_trainable)
    state = json.load(open(tmp_path / "state.json"))
    assert state["run"] == {"note": "x"} and state["data"] == {"samples": 4, "skipped": 1}
    assert sorted(os.listdir(tmp_path)) == ["ema.safetensors", "optimizer.pt", "state.json", "trainable.safetensors"]


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
        save_train_state(str(tmp_path), fsdp, {"samples": 2})
        fsdp.train_step([batches[2]])
        resumed = Trainer(sharded(), cfg)
        load_train_state(str(tmp_path), resumed)
        resumed.train_step([batches[2]])
        for k, w in fsdp.ema_weights().items():
            assert torch.equal(resumed.ema_weights()[k], w), k
    finally:
        dist.destroy_process_group()


def test_an_fsdp_gpu_worker_loads_the_frozen_backbone_in_bf16_and_trains_fp32_parts(tmp_path):
    """A 14B backbone loaded in fp32 and cast later would be 56 GB in memory first: an FSDP GPU worker loads it in
    bf16 (``from_pretrained(torch_dtype=...)``) while the SCE, MPD and task embeddings it trains stay fp32."""
    from pipelines.train_worker import backbone_dtype, build_model

    job = TrainJobConfig.tiny(strategy="fsdp", use_gpu=True)
    assert backbone_dtype(job) == torch.bfloat16
    assert backbone_dtype(dataclasses.replace(job, strategy="ddp")) is None
    assert backbone_dtype(TrainJobConfig.tiny()) is None  # CPU: fp32 (the trainer autocasts on CUDA only)
    config = WanBackboneConfig.tiny(encoders=True)
    reference = build_backbone(config)
    reference.save_pretrained(str(tmp_path / "bb"))
    model, _ = build_model(dataclasses.replace(job, backbone_pretrained=str(tmp_path / "bb")), config, torch.bfloat16)
    assert {p.dtype for p in model.backbone.parameters()} == {torch.bfloat16}
    trainable = {n: p for n, p in model.named_parameters() if not n.startswith("backbone.")}
    assert trainable and {p.dtype for p in trainable.values()} == {torch.float32}
    for k, v in reference.transformer.state_dict().items():  # the stored fp32 weights, rounded once
        assert torch.equal(model.backbone.transformer.state_dict()[k], v.to(torch.bfloat16)), k
    sce_block, g_block = model.sce.blocks[0].state_dict(), model.backbone.encoder_blocks()[0].state_dict()
    assert all(torch.equal(sce_block[k], g_block[k].float()) for k in g_block)  # the SCE copies G's bf16 block
