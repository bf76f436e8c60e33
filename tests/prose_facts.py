"""Numbers the prose may state though no run decides them and no cell of the page prints them, each with its
source. Short on purpose: a number a run decides is never a fact."""

import math

from fmnist_utils.protocol import (
    SEED_BATCH_SIZE,
    SEED_EPOCHS,
    SEED_RESULTS,
    SEED_SPLIT_RANDOM_STATE,
    SEED_TOTAL_PARAMS,
    VAL_FRACTION,
)

#: (the number, where it comes from)
FACTS = [
    (SEED_RESULTS["fashion_mnist"], "the seed notebook's reported Fashion-MNIST test accuracy (protocol)"),
    (SEED_RESULTS["mnist"], "the seed notebook's reported MNIST test accuracy (protocol)"),
    (SEED_TOTAL_PARAMS, "the seed network's parameters (protocol); also as 1.9 million, 1.88 M"),
    (SEED_EPOCHS, "the seed's epochs (protocol)"),
    (SEED_BATCH_SIZE, "the seed's batch size (protocol)"),
    (VAL_FRACTION, "the seed's validation share, 15 % (protocol)"),
    (0.85, "the seed's training share, 85 % (1 - protocol.VAL_FRACTION)"),
    (SEED_SPLIT_RANDOM_STATE["fashion_mnist"], "the seed's split, random_state for Fashion-MNIST (protocol)"),
    (SEED_SPLIT_RANDOM_STATE["mnist"], "the seed's split, random_state for MNIST (protocol)"),
    (60_000, "training images of each dataset (the publishers' IDX files)"),
    (10_000, "test images of each dataset (the publishers' IDX files)"),
    (70_000, "all images of each dataset (60,000 + 10,000)"),
    (51_000, "training images after the seed's split (85 % of 60,000)"),
    (9_000, "validation images after the seed's split (15 % of 60,000)"),
    (28, "an image's side in pixels, 28×28 (the IDX files)"),
    (784, "pixels of an image (28 × 28)"),
    (255, "the largest pixel value, uint8 (the IDX files)"),
    (10, "classes of each dataset (the publishers)"),
    (0.35, "the seed's dropout rate (the seed notebook; models.build_seed_model)"),
    (64, "filters of the seed's first convolution (the seed notebook; models.build_seed_model)"),
    (512, "filters of the seed's second convolution (the seed notebook; models.build_seed_model)"),
    (25, "weights of one 5×5 filter on one channel (the seed's kernel size)"),
    (14, "pixels on a side of the patch one value of conv2 sees: 5×5, 2×2 pooling, 5×5 (6 + 2 × 4)"),
    (8_192, "numbers in the seed's flattened map, 4×4×512 (its Flatten layer)"),
    (0.05, "the range of Keras' RandomUniform and the deviation of its RandomNormal (Keras' defaults)"),
    (math.log(10), "ln 10 ≈ 2.30: the cross-entropy of an even guess over 10 classes"),
    (99.7, "% test accuracy of convolutional nets on MNIST (the Fashion-MNIST README: 'can achieve 99.7%')"),
    (2_000, "training images of the bundled sample (fmnist_utils/sample/MANIFEST.json)"),
    (500, "test images of the bundled sample (fmnist_utils/sample/MANIFEST.json)"),
    (1_700, "training images of the bundled sample after the seed's split (85 % of 2,000)"),
]
