"""Per-data-set defaults: BARS's DeepFM settings under whatever the user sets."""

from __future__ import annotations

import pytest

from recloss.config import config_from_dict, load_config
from recloss.data.schema import Schema
from recloss.dataset_defaults import DATASET_DEFAULTS
from recloss.models import build_model


def test_frappe_gets_bars_deepfm_settings():
    cfg = config_from_dict({"data": {"dataset": "frappe"}})
    assert (cfg.model.embed_dim, cfg.train.batch_size) == (10, 4096)
    assert cfg.train.embedding_regularizer == 0.05
    assert cfg.model.params == {"hidden_dims": [400] * 3, "dropout": 0.2, "batch_norm": True}
    assert (cfg.train.lr_schedule.name, cfg.train.patience) == ("plateau", 2)


def test_what_the_user_sets_wins_key_by_key():
    cfg = load_config(
        None,
        {"data.dataset": "criteo", "train.batch_size": 512, "model.params": {"dropout": 0.5}},
    )
    assert cfg.train.batch_size == 512
    assert cfg.model.params == {"hidden_dims": [1000] * 5, "dropout": 0.5}
    assert cfg.train.embedding_regularizer == 1e-5


def test_the_dnn_settings_apply_to_deepfm_only():
    cfg = config_from_dict({"data": {"dataset": "avazu"}, "model": {"name": "ipnn"}})
    assert cfg.model.params == {}
    assert cfg.model.embed_dim == 16 and cfg.train.batch_size == 10_000


def test_data_sets_without_a_published_configuration_keep_the_general_defaults():
    assert config_from_dict({"data": {"dataset": "movielens-100k"}}) == config_from_dict({})


@pytest.mark.parametrize("name", sorted(DATASET_DEFAULTS))
def test_every_entry_is_a_valid_deepfm_configuration(name):
    cfg = config_from_dict({"data": {"dataset": name}})
    schema = Schema("binary", 2, ("a", "b"), (5, 7))
    model = build_model("deepfm", schema, cfg.model.embed_dim, **cfg.model.params)
    assert model.dnn is not None  # the DNN settings are DeepFM parameters
