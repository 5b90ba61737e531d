"""How the genprop library runs distributed: Ray Data dataflows and the Ray Train loop.

Ray is imported only here and in ``jobs/``; ``genprop/`` never imports it.
"""
