"""The model zoo: deep recommender models that map a Batch to logits."""

from recloss.models import autoint, dcnv2, deepfm, fm, ipnn, lr, nfm, widedeep, xdeepfm  # noqa: F401
from recloss.models.base import MODELS, RecModel, build_model, check_model_params, default_params

__all__ = ["MODELS", "RecModel", "build_model", "check_model_params", "default_params"]
