"""Classical baselines run by the evaluation: identity, flow-warp, mask tracking + per-frame inpainting.

Each takes the original video (T, H, W, 3) uint8 and the edited first frame (H, W, 3) uint8 and
returns {"frames": (T, H, W, 3) uint8, "mask": (T, H, W) bool or None}.
"""

from genprop.baselines.flow_warp import propagate_flow_warp
from genprop.baselines.identity import propagate_identity
from genprop.baselines.track_inpaint import propagate_track_inpaint

__all__ = ["propagate_flow_warp", "propagate_identity", "propagate_track_inpaint"]
