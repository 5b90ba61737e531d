"""Both adapters (and the preconditioned Wan) implement every member of the backbone and latent-map protocols."""

from __future__ import annotations

import inspect

import pytest

from genprop.models.backbones import PixelUnshuffleLatents, SVDBackbone, SVDVaeLatents, WanBackbone, WanVaeLatents
from genprop.models.backbones.interface import LatentMap, VideoBackbone
from genprop.models.backbones.wan_preconditioned import PreconditionedWanBackbone
from tests.models.helpers import make_model


def _members(protocol) -> dict[str, object]:
    """The protocol's own members: annotated attributes (None) and methods/properties (their objects)."""
    out = {name: None for name in protocol.__annotations__}
    for name, value in vars(protocol).items():
        if not name.startswith("_") and (inspect.isfunction(value) or isinstance(value, property)):
            out[name] = value
    return out


def _mismatches(cls, protocol) -> list[str]:
    bad = []
    for name, spec in _members(protocol).items():
        impl = inspect.getattr_static(cls, name, None)
        if inspect.isfunction(spec):
            if not callable(impl):
                bad.append(f"{name}: missing method")
                continue
            want = list(inspect.signature(spec).parameters)
            got = list(inspect.signature(impl).parameters)
            if got[:len(want)] != want or any(inspect.signature(impl).parameters[p].default is inspect.Parameter.empty
                                              for p in got[len(want):]):
                bad.append(f"{name}: parameters {got}, the protocol's {want}")
        elif isinstance(spec, property) and not isinstance(impl, property):
            bad.append(f"{name}: not a property")
    return bad


@pytest.mark.parametrize("cls", [SVDBackbone, WanBackbone, PreconditionedWanBackbone])
def test_adapters_implement_every_backbone_member(cls):
    assert _mismatches(cls, VideoBackbone) == []


@pytest.mark.parametrize("cls", [PixelUnshuffleLatents, SVDVaeLatents, WanVaeLatents])
def test_latent_maps_implement_every_latent_map_member(cls):
    assert _mismatches(cls, LatentMap) == []


@pytest.mark.parametrize("name", ["svd", "wan"])
def test_built_adapters_have_the_protocols_attributes(name):
    bb = make_model(name).backbone
    assert isinstance(bb, VideoBackbone)  # runtime check: every member present
    for attr in LatentMap.__annotations__:
        assert isinstance(getattr(bb.latent_map, attr), int), attr
    assert bb.spatial_alignment > 0 and bb.default_working_area > 0 and bb.default_window > 0


def test_the_check_fails_for_an_adapter_missing_a_member():
    class Partial(WanBackbone):
        denoiser_blocks = None

        def guidance_scale(self, num_latent_frames):
            return None

    bad = _mismatches(Partial, VideoBackbone)
    assert any(m.startswith("denoiser_blocks") for m in bad) and any(m.startswith("guidance_scale") for m in bad)
