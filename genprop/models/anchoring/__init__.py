"""The procedural world's anchoring extension of GenProp: the source-anchor gate, the flow anchor, L_gate and the
anchored model that composes the paper's stages with its own (docs/design-decisions.md, "Procedural extensions:
anchoring"). ``genprop.models.build_genprop`` imports it only for a config with an ``anchoring`` section."""
