"""The statistics 03, 04, appendix A1 and results/seed/summary.md print about the seed protocol's runs."""

from __future__ import annotations

import pandas as pd
import pytest

from fmnist_utils.comparison import error_ratio, gap_sentence, gap_to_2017, seed_spread


def _runs(fashion: list[float], mnist: list[float]) -> pd.DataFrame:
    rows = [("fashion_mnist", s, a) for s, a in enumerate(fashion)] + [
        ("mnist", s, a) for s, a in enumerate(mnist)
    ]
    return pd.DataFrame(rows, columns=["dataset", "seed", "test_accuracy"])


def test_the_spread_is_the_runs_sample_deviation_beside_the_test_sets_own_error():
    spread = seed_spread(_runs([0.92, 0.93, 0.94, 0.93], [0.99, 0.99]))
    fashion = spread.loc["Fashion-MNIST"]
    assert fashion["runs (random seeds)"] == 4 and fashion["mean"] == pytest.approx(0.93)
    assert fashion["std"] == pytest.approx(0.0081650, rel=1e-4), "n - 1 in the denominator"
    assert fashion["test-set standard error"] == pytest.approx(
        0.0025515, rel=1e-4
    )  # sqrt(.93 * .07 / 10,000)
    assert fashion["mean minus 2017 (points)"] == pytest.approx(100 * (0.93 - 0.9323))


def test_the_2017_gap_is_read_against_one_more_run_and_against_a_difference_of_two_test_sets():
    row = pd.Series(
        {
            "runs (random seeds)": 4,
            "mean": 0.9247,
            "std": 0.0013,
            "test-set standard error": 0.0026,
            "2017 notebook": 0.9323,
        }
    )
    gap = gap_to_2017(row)
    assert gap["same_images"] == pytest.approx(5.23, abs=0.01)  # 0.0076 / (0.0013 * sqrt(1.25))
    assert gap["interval"] == pytest.approx((0.9201, 0.9293), abs=1e-4)  # t(3) = 3.182
    assert gap["other_images"] == pytest.approx(1.92, abs=0.01)  # 0.0076 / sqrt(0.0013² * 1.25 + 2 * 0.0026²)
    sentence = gap_sentence("Fashion-MNIST", row)
    assert "5.2 standard deviations of one more of our runs above our mean, outside" in sentence
    assert "1.9 standard deviations of the difference" in sentence


def test_a_2017_number_within_reach_of_one_more_run_is_called_inside():
    row = pd.Series(
        {
            "runs (random seeds)": 4,
            "mean": 0.9943,
            "std": 0.0009,
            "test-set standard error": 0.0008,
            "2017 notebook": 0.9942,
        }
    )
    assert "below our mean, inside the 95 % range" in gap_sentence("MNIST", row)


def test_the_error_ratio_divides_mean_errors_and_ranges_over_paired_and_all_runs():
    ratio = error_ratio(_runs([0.92, 0.93], [0.99, 0.995]))  # errors 0.08, 0.07 against 0.01, 0.005
    assert ratio["seeds"] == 2
    assert ratio["ratio_of_means"] == pytest.approx(10.0)
    assert (ratio["lowest"], ratio["highest"]) == pytest.approx((8.0, 14.0))
    assert (ratio["lowest_any"], ratio["highest_any"]) == pytest.approx((7.0, 16.0))
