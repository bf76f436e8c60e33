"""The ``tf.data`` pipeline notebook 06 measures, with TensorFlow's autotuner on or off."""

from __future__ import annotations

import numpy as np


def make_tf_dataset(
    x: np.ndarray,
    y: np.ndarray,
    batch_size: int = 256,
    shuffle: bool = True,
    seed: int | None = 0,
    cache: bool = True,
    autotune: bool = False,
):
    """A ``tf.data`` pipeline: uint8 images (N, 28, 28) -> float32 batches (B, 28, 28, 1), labels int.

    Images stay uint8 in the cache (4x less memory) and are cast per batch; the pipeline shuffles
    every epoch, batches, and prefetches two batches so the next is ready while the model trains.
    ``autotune`` is off by default: with TensorFlow 2.21 the autotuner's background thread, which wakes
    after 10 ms and then at doubling intervals (up to 60 s), made ``fit`` wait after an epoch's last step
    for its next wake-up, so a pass of about 10.5 s of steps took 20.47 s and epochs of about 41 s took
    81.91 s (``results/benchmark/``, notebook 06). With
    ``autotune=True`` the casting runs in parallel and the prefetch buffer is tuned, as ``tf.data.AUTOTUNE``
    asks.
    """
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((x[..., np.newaxis], y.astype(np.int32)))
    if cache:
        ds = ds.cache()
    if shuffle:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    parallel = tf.data.AUTOTUNE if autotune else None
    ds = ds.batch(batch_size).map(lambda xb, yb: (tf.cast(xb, tf.float32), yb), num_parallel_calls=parallel)
    ds = ds.prefetch(tf.data.AUTOTUNE if autotune else 2)
    options = tf.data.Options()
    options.autotune.enabled = autotune
    return ds.with_options(options)
