"""recloss: deep recommender models trained with automatically searched loss functions."""

__version__ = "0.1.0"
