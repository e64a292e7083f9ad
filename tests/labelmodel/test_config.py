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
        LabelModelConfig(tie_break_policy="coin-flip")


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
    with pytest.raises(ValueError, match=r"class_balance has 3 entries \[0\.2, 0\.3, 0\.5\], but cardinality is 2"):
        LabelModel.from_config({"class_balance": [0.2, 0.3, 0.5]}, cardinality=2)
    with pytest.raises(ValueError, match=r"^tol must be a number, got 'abc'$"):
        LabelModel.from_config({"tol": "abc"}, cardinality=2)
    assert LabelModel.from_config({"tol": "1e-5"}, cardinality=2).config.tol == 1e-5  # YAML reads 1e-5 as text


def test_configured_class_balance_is_the_default_for_fit():
    import numpy as np

    from labelmodel import LabelModel, LabelModelConfig

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 2000)
    L = np.where(rng.random((2000, 4)) < 0.5, np.where(rng.random((2000, 4)) < 0.8, y[:, None], 1 - y[:, None]), -1)
    cfg = LabelModelConfig.from_dict({"class_balance": [0.9, 0.1]})
    assert cfg.class_balance == (0.9, 0.1)
    lm = LabelModel.from_config(cfg, cardinality=2).fit(L)
    # All-abstain rows get the class prior, which is now the configured balance.
    np.testing.assert_allclose(lm.predict_proba(np.full((1, 4), -1))[0], [0.9, 0.1], atol=1e-9)
    explicit = LabelModel.from_config(cfg, cardinality=2).fit(L, class_balance=[0.5, 0.5])
    np.testing.assert_allclose(explicit.predict_proba(np.full((1, 4), -1))[0], [0.5, 0.5], atol=1e-9)


def test_bad_class_balance_is_rejected():
    import pytest

    from labelmodel import LabelModelConfig

    with pytest.raises(ValueError, match=r"class_balance must be proportions \(each above 0\) that sum to 1 \(within 0\.01\), got \[0\.7, 0\.7\]"):
        LabelModelConfig.from_dict({"class_balance": [0.7, 0.7]})
    with pytest.raises(ValueError, match=r"each above 0"):  # as LabelModel.fit says of a zero class
        LabelModelConfig.from_dict({"class_balance": [0.0, 1.0]})
