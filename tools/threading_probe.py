"""Timed passes of the seed network in mixed_bfloat16 under one threading setting, with the cores it kept busy.

    python -m tools.threading_probe INTRA INTER MODE [ARCH]   # prints one JSON line

INTRA, INTER: TensorFlow's intra-op and inter-op thread counts (0: TensorFlow's default). MODE: ``fits`` (one
``fit`` call per pass) or ``onefit`` (one ``fit`` call over all passes). ARCH: ``seed`` (default) or ``vgg``.
Environment: ``PASSES`` (default 6). Each pass trains on the first 10,240 Fashion-MNIST training images, batch
256, ``tf.data``; a pass's "cores busy" is the process's CPU seconds over its wall seconds. Run one setting per
process (TensorFlow fixes its thread pools at start-up); the results behind notebook 06's threading table are
in ``results/benchmark/threading_probe.json``.
"""

from __future__ import annotations

import json
import os
import sys
import time


def main(argv: list[str]) -> None:
    intra, inter, mode = int(argv[0]), int(argv[1]), argv[2]
    arch = argv[3] if len(argv) > 3 else "seed"
    import tensorflow as tf

    if intra:
        tf.config.threading.set_intra_op_parallelism_threads(intra)
    if inter:
        tf.config.threading.set_inter_op_parallelism_threads(inter)
    import keras

    from fmnist_utils.ablation import Recipe, build_recipe_model
    from fmnist_utils.data import load_dataset, make_tf_dataset
    from fmnist_utils.models import build_seed_model, compile_seed_model
    from fmnist_utils.training import set_seed

    ((x, y), _), _ = load_dataset("fashion_mnist", return_info=True, verbose=False)
    x, y = x[:10240], y[:10240]
    set_seed(0)
    if arch == "seed":
        model = build_seed_model(precision="mixed_bfloat16")
    else:
        recipe = Recipe.parse("arch=vgg, conv_bn, flip")
        model = build_recipe_model(recipe, "fashion_mnist", precision="mixed_bfloat16")
    model = compile_seed_model(model, keras.optimizers.Adam(1e-3))
    ds = make_tf_dataset(x, y, 256, shuffle=True, seed=0)
    model.fit(ds, epochs=1, verbose=0)  # warm-up
    passes = []

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = (time.perf_counter(), time.process_time())

        def on_epoch_end(self, epoch, logs=None):
            wall = time.perf_counter() - self.start[0]
            passes.append((round(wall, 1), round((time.process_time() - self.start[1]) / wall, 2)))

    n = int(os.environ.get("PASSES", 6))
    if mode == "onefit":
        model.fit(ds, epochs=n, verbose=0, callbacks=[Timer()])
    else:
        for _ in range(n):
            model.fit(ds, epochs=1, verbose=0, callbacks=[Timer()])
    print(
        json.dumps({"intra": intra, "inter": inter, "mode": mode, "arch": arch, "passes": passes}), flush=True
    )


if __name__ == "__main__":
    main(sys.argv[1:])
