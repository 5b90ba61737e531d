"""The built-in procedural world: seeded videos of textured objects with cast shadows and floor
reflections, written in the YouTube-VOS layout, plus benchmark edit cases (remove, replace, insert,
background, track) whose ground truth is rendered from the edited scene, not pixel-edited.

    from genprop.datasets.procedural import WorldConfig, write_world
    write_world("s3://bucket/world", WorldConfig(videos=8))
"""

from genprop.datasets.procedural.cases import Case, choose_object, make_case, make_case_id, make_cases
from genprop.datasets.procedural.config import TASKS, WorldConfig, make_scene
from genprop.datasets.procedural.render import RenderedVideo, background_image, render
from genprop.datasets.procedural.scene import Background, ObjectSpec, Scene, color_name
from genprop.datasets.procedural.world import CASE_FILES, WORLD_VERSION, write_case, write_world

__all__ = [
    "TASKS", "Background", "ObjectSpec", "Scene", "WorldConfig", "color_name", "make_scene",
    "RenderedVideo", "background_image", "render",
    "Case", "choose_object", "make_case", "make_case_id", "make_cases",
    "CASE_FILES", "WORLD_VERSION", "write_case", "write_world",
]
