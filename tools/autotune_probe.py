"""Where a slow pass's time goes: the seed network in mixed_bfloat16, its tf.data pipeline autotuned or not.

    python -m tools.autotune_probe [--passes 6] [--output results/benchmark/autotune_probe.json]

Two models train side by side on the first 10,240 Fashion-MNIST training images (batch 256), one pass per
``fit`` call, the two pipelines' passes interleaved: one with ``tf.data`` autotuning on (what
``tf.data.AUTOTUNE`` gives), one with it off (:func:`fmnist_utils.data.make_tf_dataset`'s default). For
every pass it records when the last training step ended (``steps_seconds``, from a batch callback) and when
``fit`` returned (``fit_seconds``), with the process's CPU seconds over the ``fit`` call. Notebook 06 reads
the committed result.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def timed_pass(model, ds) -> dict[str, float]:
    """One ``fit`` pass: seconds to its last step's end and to ``fit``'s return, and CPU seconds."""
    import keras

    marks = {}

    class LastStep(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            marks["steps"] = time.perf_counter()

    start, start_cpu = time.perf_counter(), time.process_time()
    model.fit(ds, epochs=1, verbose=0, callbacks=[LastStep()])
    end = time.perf_counter()
    return {
        "steps_seconds": marks["steps"] - start,
        "fit_seconds": end - start,
        "cpu_seconds": time.process_time() - start_cpu,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.autotune_probe", description=__doc__.split("\n\n")[0])
    p.add_argument("--passes", type=int, default=6)
    p.add_argument("--output", type=Path)
    args = p.parse_args(argv)
    import keras

    from fmnist_utils.data import load_dataset
    from fmnist_utils.files import write_json
    from fmnist_utils.lab.benchmark import measured_machine
    from fmnist_utils.lab.pipelines import make_tf_dataset
    from fmnist_utils.models import build_seed_model, compile_seed_model
    from fmnist_utils.training import set_seed

    ((x, y), _), _ = load_dataset("fashion_mnist", return_info=True, verbose=False)
    x, y = x[:10240], y[:10240]
    runs = {}
    for autotune in (True, False):
        set_seed(0)
        model = compile_seed_model(build_seed_model(precision="mixed_bfloat16"), keras.optimizers.Adam(1e-3))
        ds = make_tf_dataset(x, y, 256, shuffle=True, seed=0, autotune=autotune)
        model.fit(ds, epochs=1, verbose=0)  # warm-up
        runs[autotune] = (model, ds, [])
    for _ in range(args.passes):
        for autotune, (model, ds, passes) in runs.items():
            passes.append(timed_pass(model, ds))
            print(f"autotune {'on ' if autotune else 'off'}: {passes[-1]}", flush=True)
    result = {
        "images": len(x),
        "batch_size": 256,
        "precision": "mixed_bfloat16",
        "passes": {("on" if autotune else "off"): passes for autotune, (_, _, passes) in runs.items()},
        "machine": measured_machine(),
    }
    if args.output:
        write_json(args.output, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
