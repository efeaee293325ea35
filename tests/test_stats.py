"""game/stats.py against hand-computed values (no scipy here: each expected figure is worked out in the comment)."""

from __future__ import annotations

import math

import pytest

from sinq.game.stats import discordant, mcnemar_exact, paired_bootstrap, pass_at_k, wilson


def test_wilson_known_values() -> None:
    value, low, high = wilson(8, 10)
    assert value == 0.8
    assert (round(low, 4), round(high, 4)) == (0.4902, 0.9433)
    # 0/10: p = 0, centre = z²/2n / (1 + z²/n), half the same: the interval is [0, z²/(n + z²)] = [0, 0.2775]
    assert wilson(0, 10)[1] == 0.0 and round(wilson(0, 10)[2], 4) == 0.2775
    assert wilson(10, 10)[2] == 1.0 and round(wilson(10, 10)[1], 4) == 0.7225
    # 99 % is wider than 95 %
    assert wilson(8, 10, 0.99)[1] < 0.4902 < 0.9433 < wilson(8, 10, 0.99)[2]
    nan, low, high = wilson(0, 0)
    assert math.isnan(nan) and (low, high) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson(11, 10)


def test_mcnemar_exact_known_values() -> None:
    # 1 vs 9 discordant: 2 * (C(10,0) + C(10,1)) / 2^10 = 22 / 1024
    assert mcnemar_exact(1, 9) == pytest.approx(22 / 1024)
    assert mcnemar_exact(9, 1) == mcnemar_exact(1, 9)
    # 0 vs 5: 2 / 32
    assert mcnemar_exact(0, 5) == pytest.approx(0.0625)
    assert mcnemar_exact(3, 3) == 1.0 and mcnemar_exact(0, 0) == 1.0
    assert discordant([True, True, False, False], [True, False, True, True]) == (1, 2)


def test_paired_bootstrap_is_seeded_and_brackets_the_delta() -> None:
    a = [1, 0, 1, 0, 1, 0, 1, 0, 1, 0] * 4
    b = [1, 1, 1, 0, 1, 1, 1, 0, 1, 1] * 4
    delta, low, high = paired_bootstrap(a, b, seed=3)
    assert delta == pytest.approx(0.3)
    assert low <= delta <= high and low > 0  # b is better on 12 items, never worse
    assert paired_bootstrap(a, b, seed=3) == (delta, low, high)
    same = paired_bootstrap(a, a, seed=3)
    assert same == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError):
        paired_bootstrap([1], [1, 0])


def test_pass_at_k_unbiased_estimator() -> None:
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
    # 1 - C(7,5)/C(10,5) = 1 - 21/252
    assert pass_at_k(10, 3, 5) == pytest.approx(1 - 21 / 252)
    assert pass_at_k(10, 6, 5) == 1.0  # fewer than k failures: some k-subset always holds a pass
    assert pass_at_k(1, 1, 1) == 1.0 and pass_at_k(1, 0, 1) == 0.0
    with pytest.raises(ValueError):
        pass_at_k(3, 1, 5)
