"""Where a training step's time goes: each layer of the fast recipes' networks timed alone.

    python -m tools.layer_probe [--rounds 10] [--output results/benchmark/layer_times.json]

For the VGG-style, VGG-lite and pool-first VGG-lite networks of notebook 06's recipes (mixed_bfloat16,
batch 256), every layer runs alone on a random batch of its input's shape: its forward pass in training
mode and its backward pass (gradients for its weights, and for its input wherever an earlier layer has
weights). Each round times a few calls of every layer of a network in turn; a layer's time is its median
over the rounds. Notebook 06 reads the committed result and sets the sum of the layers against a real
training step.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

NETWORKS = {
    "vgg": "arch=vgg, conv_bn, flip, label_smoothing=0.1",
    "vgg_lite": "arch=vgg_lite, conv_bn, flip, label_smoothing=0.1",
    "vgg_lite_pool_first": "arch=vgg_lite, conv_bn, flip, label_smoothing=0.1, pool_first",
}


def layer_step(layer, batch_size: int, input_gradient: bool):
    """A compiled forward + backward pass of ``layer`` alone, and a random input batch for it."""
    import tensorflow as tf

    x = tf.random.uniform((batch_size, *layer.input.shape[1:]), 0, 1, dtype=layer.compute_dtype)

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(tf.cast(layer(x, training=True), tf.float32))
        return tape.gradient(loss, ([x] if input_gradient else []) + layer.trainable_variables)

    return step, x


def time_layers(model, batch_size: int = 256, rounds: int = 10, calls: int = 3) -> list[dict]:
    """Each layer's median seconds per call (forward and backward) over ``rounds`` rounds of ``calls``."""
    from fmnist_utils.lab.networks import layer_forward_flops

    first_weighted = next(i for i, layer in enumerate(model.layers) if layer.trainable_weights)
    steps = [layer_step(layer, batch_size, i > first_weighted) for i, layer in enumerate(model.layers)]
    for step, x in steps:
        step(x)  # trace and warm up
    seconds = [[] for _ in steps]
    for _ in range(rounds):
        for (step, x), times in zip(steps, seconds):
            start = time.perf_counter()
            for _ in range(calls):
                [g.numpy() for g in step(x)]
            times.append((time.perf_counter() - start) / calls)
    return [
        {
            "layer": layer.name,
            "kind": type(layer).__name__,
            "output_shape": list(layer.output.shape[1:]),
            "forward_mflop_per_image": layer_forward_flops(layer) / 1e6,
            "input_gradient": i > first_weighted,
            "seconds": statistics.median(times),
        }
        for i, (layer, times) in enumerate(zip(model.layers, seconds))
    ]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.layer_probe", description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--output", type=Path)
    args = p.parse_args(argv)

    from fmnist_utils.files import write_json
    from fmnist_utils.lab.ablation import Recipe, build_recipe_model
    from fmnist_utils.lab.benchmark import measured_machine

    networks = {}
    for name, recipe in NETWORKS.items():
        model = build_recipe_model(Recipe.parse(recipe), "fashion_mnist", precision="mixed_bfloat16", seed=0)
        networks[name] = {"recipe": recipe, "layers": time_layers(model, args.batch_size, args.rounds)}
        total = sum(layer["seconds"] for layer in networks[name]["layers"])
        print(f"{name}: layers alone sum to {1000 * total:.0f} ms per batch of {args.batch_size}", flush=True)
    result = {
        "batch_size": args.batch_size,
        "precision": "mixed_bfloat16",
        "rounds": args.rounds,
        "networks": networks,
        "machine": measured_machine(),
    }
    if args.output:
        write_json(args.output, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
