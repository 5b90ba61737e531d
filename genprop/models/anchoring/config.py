"""The anchoring extension's settings (``GenPropConfig.anchoring``): the procedural world's source/flow anchor."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AnchoringConfig:
    """Source (and flow) anchoring of G's denoiser, its gate, the gate's loss and learning rate.

    The gate needs a Wan backbone preconditioned around an anchor (``WanBackboneConfig.first_frame_anchor`` /
    ``sigma_data``: the procedural backbone); see docs/design-decisions.md, "Procedural extensions: anchoring".

    Args:
        flow (bool, default False): the gate's second channel, towards the first-frame edit carried by the
            source's optical flow (``genprop.models.anchoring.flow``).
        gate_weight (float, default 1.0): weight of L_gate, the gate's area-balanced supervision towards
            ``1 - mask`` (and, with ``flow``, towards where the flow anchor is the closest anchor).
        gate_lr_scale (float, default 1.0): learning-rate multiplier of the gate's heads: a few zero-initialised
            linear maps whose outputs must travel O(1), which at the SCE's learning rate take thousands of steps.
        mpd_reads_gate (bool, default False): the MPD reads the gate too: its values, per token, through a
            zero-initialised linear map added to G's penultimate features (the gate is the model's own estimate of
            where the edit lies, and a G anchored on a correct anchor has nothing left to show it; see
            docs/design-decisions.md, "Mask Prediction Decoder").
        mpd_reads_footprint (bool, default False): with ``mpd_reads_gate``, the MPD reads the gate's inputs too:
            the edit's footprints per latent channel (``SourceAnchorGate.footprints``), whose channels hold each
            latent position's pixels, so the mask can resolve detail finer than the gate's latent grid.
    """

    flow: bool = False
    gate_weight: float = 1.0
    gate_lr_scale: float = 1.0
    mpd_reads_gate: bool = False
    mpd_reads_footprint: bool = False

    def __post_init__(self):
        if self.mpd_reads_footprint and not self.mpd_reads_gate:
            raise ValueError("anchoring.mpd_reads_footprint needs anchoring.mpd_reads_gate (the footprints join "
                             "the gate's values where the MPD reads them)")
