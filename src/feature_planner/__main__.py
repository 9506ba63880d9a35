"""``python -m feature_planner``: the same command as ``feature-planner``."""

from .cli import main

main()
