"""fmnist_utils.lab.releases: the first release's committed labels, the label comparison, the seed's printed log."""

from __future__ import annotations

import gzip
import shutil

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from fmnist_utils.data import SHA256, DataIntegrityError, read_idx
from fmnist_utils.lab import figures, releases

FIRST_TEST_HEAD, FIRST_TEST_TAIL = [0, 1, 2, 2, 3], [0, 6, 8, 8, 1]
TODAY_TEST_HEAD, TODAY_TEST_TAIL = [9, 2, 1, 1, 6], [9, 1, 8, 1, 5]


def test_committed_first_release_labels_verify_and_load():
    train, test = releases.first_release_labels()
    assert train.shape == (60000,) and test.shape == (10000,)
    assert train.dtype == np.uint8 and test.dtype == np.uint8
    assert np.bincount(train).tolist() == [6000] * 10 and np.bincount(test).tolist() == [1000] * 10


def test_first_release_test_labels_begin_and_end_as_known():
    _, test = releases.first_release_labels()
    assert test[:5].tolist() == FIRST_TEST_HEAD and test[-5:].tolist() == FIRST_TEST_TAIL


@pytest.mark.full_data
def test_today_differs_from_first_release(full_data_root):
    folder = full_data_root / "fashion-mnist"
    name = "t10k-labels-idx1-ubyte.gz"
    today = read_idx(folder / name, SHA256["fashion_mnist"][name])
    assert today[:5].tolist() == TODAY_TEST_HEAD and today[-5:].tolist() == TODAY_TEST_TAIL
    result = releases.compare_test_labels(releases.first_release_labels()[1], today)
    assert result["counts_match"] and result["first_head"] == FIRST_TEST_HEAD
    assert result["n_agree"] == 1038  # about chance (10 %): the two test sets are ordered unrelatedly


@pytest.mark.parametrize("filename", list(releases.FIRST_RELEASE_SHA256))
def test_altered_copy_is_rejected(tmp_path, filename):
    shutil.copytree(releases.first_release_folder(), tmp_path / "copy")
    path = tmp_path / "copy" / filename
    payload = bytearray(gzip.decompress(path.read_bytes()))
    payload[100] = (payload[100] + 1) % 10  # still a valid label, so only the checksum can tell
    path.write_bytes(gzip.compress(bytes(payload)))
    with pytest.raises(DataIntegrityError, match="SHA-256") as err:
        releases.first_release_labels(tmp_path / "copy")
    assert releases.FIRST_RELEASE_SHA256[filename] in str(err.value)


def test_compare_test_labels_on_synthetic_arrays():
    first = np.array([0, 1, 2, 2, 1, 0, 0], dtype=np.uint8)
    current = np.array([0, 2, 2, 1, 1, 0, 2], dtype=np.uint8)
    result = releases.compare_test_labels(first, current, n_classes=3)
    assert result["n_labels"] == 7
    assert result["first_head"] == [0, 1, 2, 2, 1] and result["current_tail"] == [2, 1, 1, 0, 2]
    assert result["first_counts"] == [3, 2, 2] and result["current_counts"] == [2, 2, 3]
    assert not result["counts_match"] and not result["first_balanced"]
    assert result["n_agree"] == 4 and result["agree_fraction"] == pytest.approx(4 / 7)  # positions 0, 2, 4, 5
    assert result["chance_agree_fraction"] == pytest.approx((3 * 2 + 2 * 2 + 2 * 3) / 49)
    table = releases.comparison_table({"synthetic": result}, dataset=None)
    assert isinstance(table, pd.DataFrame) and table.loc["positions with the same label", "synthetic"] == "4"
    with pytest.raises(ValueError, match="length"):
        releases.compare_test_labels(first, current[:-1])


def test_balanced_labels_compare_equal_counts():
    labels = np.repeat(np.arange(10, dtype=np.uint8), 3)
    result = releases.compare_test_labels(labels, labels[::-1])
    assert result["counts_match"] and result["first_balanced"] and result["current_balanced"]
    assert result["chance_agree_fraction"] == pytest.approx(0.1)
    assert releases.comparison_table(result).loc["today: images per class"].iloc[0] == "10 × 3"


@pytest.mark.parametrize(
    "dataset,last",
    [
        ("fashion_mnist", (0.0357, 0.9876, 0.3048, 0.9316)),
        ("mnist", (0.0021, 0.9994, 0.0419, 0.9943)),
    ],
)
def test_seed_log_has_thirty_epochs_as_printed(dataset, last):
    log = releases.seed_log(dataset)
    assert list(log.columns) == ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "epoch_seconds"]
    assert log["epoch"].tolist() == list(range(1, 31))
    row = log.iloc[-1]
    assert (row["loss"], row["accuracy"], row["val_loss"], row["val_accuracy"]) == pytest.approx(last)


def test_seed_log_comparison_draws_two_lines_per_source():
    seed = releases.seed_log("fashion_mnist")
    ours = pd.DataFrame(
        {"epoch": [0, 1, 2], "accuracy": [0.74, 0.85, 0.88], "val_accuracy": [0.86, 0.88, 0.89]}
    )
    fig = figures.seed_log_comparison(seed, ours)
    ax = fig.axes[0]
    labels = [line.get_label() for line in ax.lines]
    assert sum(label.startswith("seed") for label in labels) == 2
    assert sum(label.startswith("ours") for label in labels) == 2
    ours_validation = next(line for line in ax.lines if line.get_label() == "ours validation")
    assert ours_validation.get_xdata().tolist() == [1, 2, 3]  # CSVLogger's 0-based epochs drawn as 1, 2, 3
    assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
    plt.close(fig)
