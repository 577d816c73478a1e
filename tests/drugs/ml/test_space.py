from __future__ import annotations

import numpy as np

from drugs.ml.space import chemical_space


def test_projection_is_fitted_on_train_and_deterministic(moses_train: list[str]) -> None:
    train = moses_train[:600]
    generated = [*train[:5], "not-a-smiles", "CCO"]
    space = chemical_space(train, generated, max_train=400, seed=1)
    assert space.train_xy.shape == (400, 2)
    assert space.generated_xy.shape == (6, 2)  # the invalid string is dropped
    assert "PCA" in space.method
    assert space.explained_variance[0] >= space.explained_variance[1] > 0

    again = chemical_space(train, generated, max_train=400, seed=1)
    np.testing.assert_array_equal(again.train_xy, space.train_xy)
    # The axes depend on the training set only, not on what was generated.
    other = chemical_space(train, ["CCO"], max_train=400, seed=1)
    np.testing.assert_allclose(other.generated_xy[0], space.generated_xy[-1])
    # A generated copy of a training molecule lands on that molecule's point.
    whole = chemical_space(train, [train[7]], max_train=len(train))
    assert whole.train_smiles == train
    np.testing.assert_allclose(whole.generated_xy[0], whole.train_xy[7])
