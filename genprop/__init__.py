"""genprop: Generative Video Propagation on diffusers image-to-video backbones.

The library never imports ``ray``; distributed execution lives in ``pipelines/`` and ``jobs/``.
"""

__version__ = "0.1.0"
