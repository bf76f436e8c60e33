"""The seed network's second convolution (64 -> 512 channels, 5x5, on 12x12 maps, batch 256) two ways in
bfloat16: ``Conv2D`` (oneDNN's convolution) and image patches times a matrix (one large matmul). Are they
numerically equal, and which trains faster here?

    python -m tools.conv_matmul_probe [REPEATS]   # prints one JSON line

Numerics: the forward output and both gradients (input, weights) of each form, against a float32 convolution.
Timing: interleaved rounds, each a burst of ``STEPS`` forward + backward steps per form (default 10), with the
cores it kept busy (process CPU seconds over wall seconds). Run it alone on the machine; the committed run is
``results/benchmark/conv_matmul_probe.json``.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from datetime import UTC, datetime

import numpy as np

SHAPE, KERNEL, FILTERS = (256, 12, 12, 64), 5, 512


def _forms():
    """The convolution as ``Conv2D`` does it and as patches @ matrix, both ``(x, w) -> y`` in x's dtype."""
    import tensorflow as tf

    def conv(x, w):
        return tf.nn.conv2d(x, tf.cast(w, x.dtype), strides=1, padding="VALID")

    def patches(x, w):
        size = [1, KERNEL, KERNEL, 1]
        p = tf.image.extract_patches(x, sizes=size, strides=[1, 1, 1, 1], rates=[1, 1, 1, 1], padding="VALID")
        rows = tf.reshape(p, (-1, KERNEL * KERNEL * SHAPE[-1]))  # each patch flattened (row, column, channel)
        y = rows @ tf.reshape(tf.cast(w, x.dtype), (-1, FILTERS))
        return tf.reshape(y, (*p.shape[:3], FILTERS))

    return {"conv2d": conv, "patches_matmul": patches}


def _step(form, upstream):
    """A compiled forward + backward step of ``form``: returns (output, d input, d weights)."""
    import tensorflow as tf

    @tf.function(jit_compile=False)
    def step(x, w):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = form(x, w)
            loss = tf.reduce_sum(tf.cast(y, tf.float32) * upstream)
        dx, dw = tape.gradient(loss, [x, w])
        return y, dx, dw

    return step


def _relative_error(a, reference) -> float:
    """Largest absolute difference over the reference's largest magnitude."""
    a, reference = np.asarray(a, np.float64), np.asarray(reference, np.float64)
    return float(np.abs(a - reference).max() / np.abs(reference).max())


def main(argv: list[str]) -> None:
    repeats = int(argv[0]) if argv else 10
    steps = int(os.environ.get("STEPS", 10))
    import tensorflow as tf

    from fmnist_utils.lab.benchmark import measured_machine

    rng = np.random.default_rng(0)
    x32 = tf.constant(rng.normal(size=SHAPE), tf.float32)
    w = tf.Variable(rng.normal(scale=0.03, size=(KERNEL, KERNEL, SHAPE[-1], FILTERS)), dtype=tf.float32)
    out = SHAPE[1] - KERNEL + 1
    upstream = tf.constant(rng.normal(size=(SHAPE[0], out, out, FILTERS)), tf.float32)
    forms = _forms()
    reference = _step(forms["conv2d"], upstream)(x32, w)
    x = tf.cast(x32, tf.bfloat16)
    result = {"shape": SHAPE, "kernel": KERNEL, "filters": FILTERS, "steps_per_burst": steps, "forms": {}}
    result["machine"] = measured_machine()
    steppers = {name: _step(form, upstream) for name, form in forms.items()}
    for name, step in steppers.items():
        got = step(x, w)
        result["forms"][name] = {
            f"relative_error_{part}": _relative_error(g, r)
            for part, g, r in zip(("output", "d_input", "d_weights"), got, reference)
        }
        step(x, w)  # warm-up
    bursts = {name: [] for name in steppers}
    for _ in range(repeats):
        for name, step in steppers.items():
            start, cpu = time.perf_counter(), time.process_time()
            for _ in range(steps):
                y, dx, dw = step(x, w)
            dw.numpy()
            wall = time.perf_counter() - start
            bursts[name].append((wall / steps * 1e3, (time.process_time() - cpu) / wall))
    for name, rows in bursts.items():
        ms, cores = zip(*rows)
        result["forms"][name].update(
            step_ms=[round(m, 1) for m in ms],
            cores_busy=[round(c, 2) for c in cores],
            median_step_ms=statistics.median(ms),
        )
    result["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
