from __future__ import annotations

import pytest

from labelmodel import LabelModel, LabelModelConfig


def test_from_dict_rejects_unknown_keys_listing_valid_ones():
    with pytest.raises(ValueError, match=r"unknown label model config key\(s\) \['n_epochs'\]; valid keys: method, "):
        LabelModelConfig.from_dict({"method": "auto", "n_epochs": 100})


def test_from_dict_round_trip_and_validation():
    cfg = LabelModelConfig.from_dict({"method": "moments", "seed": 7, "tie_break_policy": "random"})
    assert LabelModelConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown method 'em'; use one of auto, dawid_skene"):
        LabelModelConfig(method="em")
    with pytest.raises(ValueError, match="prior_precision must be in"):
        LabelModelConfig(prior_precision=1.0)
    with pytest.raises(ValueError, match="unknown tie_break_policy"):
        LabelModelConfig(tie_break_policy="true-random")


def test_model_kwargs_map_onto_config():
    lm = LabelModel(cardinality=3, seed=5, method="majority")
    assert lm.config.seed == 5 and lm.config.method == "majority" and lm.cardinality == 3
    assert LabelModel().config == LabelModelConfig()  # fixed defaults, nothing drawn at import
    with pytest.raises(ValueError, match="cardinality must be an int >= 2"):
        LabelModel(cardinality=1)
    with pytest.raises(ValueError, match="unknown label model config key"):
        LabelModel(cardinality=2, learning_rate=0.1)


def test_from_config_accepts_config_or_mapping():
    cfg = LabelModelConfig(method="moments", seed=3)
    assert LabelModel.from_config(cfg, cardinality=4).config == cfg
    assert LabelModel.from_config({"seed": 3}, cardinality=2).config.seed == 3
    with pytest.raises(ValueError, match="unknown label model config key"):
        LabelModel.from_config({"sed": 3}, cardinality=2)
