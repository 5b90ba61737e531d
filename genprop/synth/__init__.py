"""Synthetic training pairs from instance-segmentation videos (paper Sec. 3.4), already routed (Eq. 3).

Pure, seeded numpy functions: no I/O, no Ray. Each returns a :class:`SyntheticPair` whose fields are
what the model consumes, so "which video goes where" is decided once, here:

    ============== ======================== ================= ===================== ===============
    task           SCE input (E)            G's first frame   target                loss mask
    ============== ======================== ================= ===================== ===============
    copy-and-paste V + pasted object        v1                V                     pasted object
    mask-and-fill  V with object inpainted  v1                V                     filled region
    colour fill    V                        painted v1        V painted every frame painted region
    ============== ======================== ================= ===================== ===============

The target is always the video whose first frame G receives. A pair's task is a :class:`genprop.tasks.Task`.
"""

from genprop.synth.colour_fill import colour_fill
from genprop.synth.copy_paste import copy_paste
from genprop.synth.mask_fill import Inpainter, mask_fill, opencv_inpainter
from genprop.synth.pair import TRACK_PROMPT, SyntheticPair
from genprop.synth.sampler import PairSpec, SynthConfig, make_pair, sample_spec

__all__ = [
    "Inpainter", "PairSpec", "SynthConfig", "SyntheticPair", "TRACK_PROMPT", "colour_fill", "copy_paste",
    "make_pair", "mask_fill", "opencv_inpainter", "sample_spec",
]
