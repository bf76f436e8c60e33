"""fmnist_utils.models: the seed architecture, its corrected variant, the legacy-decay optimizer."""

from __future__ import annotations

import numpy as np
import pytest

from fmnist_utils.models import (
    PRECISIONS,
    build_seed_model,
    compile_seed_model,
    parameter_table,
    seed_learning_rate,
    seed_loss,
    seed_optimizer,
)
from fmnist_utils.protocol import SEED_TOTAL_PARAMS

SEED_TABLE = [  # layer, output shape, params (the seed's model.summary(), in channels-last)
    ("input_bn", (28, 28, 1), 112),
    ("conv1", (24, 24, 64), 1_664),
    ("pool1", (12, 12, 64), 0),
    ("conv2", (8, 8, 512), 819_712),
    ("pool2", (4, 4, 512), 0),
    ("flatten", (8192,), 0),
    ("fc1", (128,), 1_048_704),
    ("drop1", (128,), 0),
    ("fc2", (64,), 8_256),
    ("drop2", (64,), 0),
    ("probabilities", (10,), 650),
]


def test_seed_model_parameter_counts():
    model = build_seed_model()
    assert model.count_params() == SEED_TOTAL_PARAMS == 1_879_098
    table = parameter_table(model)
    assert int(table["non_trainable"].sum()) == 56
    assert int(table["trainable"].sum()) == 1_879_042


def test_seed_model_layers_and_shapes_match_the_seed_table():
    table = parameter_table(build_seed_model())
    assert list(zip(table["layer"], table["output_shape"], table["total"])) == SEED_TABLE


def test_seed_batchnorm_normalises_the_width_axis():
    bn = build_seed_model().get_layer("input_bn")
    assert bn.axis in (2, [2]) or list(np.atleast_1d(bn.axis)) == [2]
    assert tuple(bn.gamma.shape) == (28,) and tuple(bn.moving_mean.shape) == (28,)


def test_seed_initialisers_draw_uniform_kernels_and_normal_biases():
    conv1 = build_seed_model().get_layer(
        "conv1"
    )  # 1,600 kernel weights, 64 biases (the seed's Keras 1 defaults)
    kernel, bias = conv1.kernel.numpy().ravel(), conv1.bias.numpy()
    assert np.abs(kernel).max() <= 0.05 and kernel.std() == pytest.approx(0.1 / np.sqrt(12), rel=0.1)
    assert bias.std() == pytest.approx(0.05, rel=0.35) and np.abs(bias).max() > 0.05  # a normal's tails


def test_corrected_variant_normalises_the_channel():
    model = build_seed_model("channel_bn")
    bn = model.get_layer("input_bn")
    assert tuple(bn.gamma.shape) == (1,)
    assert model.count_params() == SEED_TOTAL_PARAMS - 112 + 4


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"variant": "resnet"}, r"'variant' must be one of 'seed', 'channel_bn'; got 'resnet'"),
        ({"precision": "fp8"}, r"'precision' must be one of 'float32', 'mixed_bfloat16'.*; got 'fp8'"),
    ],
)
def test_bad_builder_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_seed_model(**kwargs)


def test_schedule_equals_legacy_decay_formula_for_1000_steps():
    schedule = seed_learning_rate()
    steps = np.arange(1001)
    got = np.array([float(schedule(int(t))) for t in steps])
    np.testing.assert_allclose(got, 1e-3 / (1 + 1e-3 * steps), rtol=1e-6)
    assert got[-1] == pytest.approx(5e-4, rel=1e-6)


def test_optimizer_applies_the_schedule_per_step():
    import keras

    optimizer = seed_optimizer()
    var = keras.Variable(np.ones(3, dtype="float32"))
    for _ in range(7):
        optimizer.apply_gradients([(keras.ops.ones((3,)), var)])
    assert int(optimizer.iterations) == 7
    current = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
    assert current == pytest.approx(1e-3 / (1 + 1e-3 * 7), rel=1e-6)


@pytest.mark.parametrize("precision", PRECISIONS)
def test_every_precision_builds_and_trains_a_step(precision):
    model = compile_seed_model(build_seed_model(precision=precision))
    x = np.random.default_rng(0).integers(0, 256, size=(8, 28, 28, 1)).astype("float32")
    y = np.arange(8) % 10
    logs = model.train_on_batch(x, y, return_dict=True)
    assert np.isfinite(logs["loss"])
    probs = model.predict(x, verbose=0)
    assert probs.dtype == np.float32  # the softmax output stays float32 under mixed precision
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-3)


def test_auto_precision_follows_the_hardware(monkeypatch):
    import tensorflow as tf

    from fmnist_utils import models

    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [])  # any host: a CPU-only one
    monkeypatch.setattr(models, "cpu_has_native_bfloat16", lambda: True)
    assert models.resolve_precision("auto") == "mixed_bfloat16"  # no GPU on the test machines
    monkeypatch.setattr(models, "cpu_has_native_bfloat16", lambda: False)
    assert models.resolve_precision("auto") == "float32"
    assert build_seed_model(precision="auto").dtype_policy.name == "float32"
    assert models.resolve_precision("mixed_float16") == "mixed_float16"


def test_forward_flops_match_the_layer_arithmetic():
    from fmnist_utils.lab.networks import forward_flops

    conv1 = 2 * 24 * 24 * 64 * (5 * 5 * 1)
    conv2 = 2 * 8 * 8 * 512 * (5 * 5 * 64)
    dense = 2 * (8192 * 128 + 128 * 64 + 64 * 10)
    assert forward_flops(build_seed_model()) == conv1 + conv2 + dense


def test_mixed_float16_compiles_with_loss_scaling_and_tiny_losses_still_update():
    import keras

    model = compile_seed_model(build_seed_model(precision="mixed_float16"))
    assert model.dtype_policy.name == "mixed_float16"
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    x = np.random.default_rng(0).integers(0, 256, size=(8, 28, 28, 1)).astype("float32")
    y = model.predict(x, verbose=0).argmax(1)  # the model's own answers: a tiny loss, tiny float16 gradients
    before = model.get_layer("conv1").kernel.numpy().copy()
    model.train_on_batch(x, y)
    assert not np.array_equal(model.get_layer("conv1").kernel.numpy(), before)


@pytest.mark.parametrize("precision", ["float32", "mixed_bfloat16"])
def test_other_precisions_are_not_loss_scaled(precision):
    import keras

    model = compile_seed_model(build_seed_model(precision=precision))
    assert model.dtype_policy.name == precision
    assert not isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)


def test_compute_policy_is_that_of_the_convolutions_not_of_an_augmentation_layer():
    from fmnist_utils.lab.ablation import Recipe, build_recipe_model
    from fmnist_utils.models import compute_policy

    model = build_recipe_model(Recipe(flip=True), "fashion_mnist", precision="mixed_bfloat16")
    assert model.layers[0].dtype_policy.name == "float32"  # the random flip
    assert compute_policy(model) == "mixed_bfloat16"


def test_keras2_numerics_clip_the_loss_and_use_adam_epsilon_1e8():
    import keras

    from fmnist_utils.models import Keras2Crossentropy, seed_loss

    assert seed_optimizer(numerics="keras2").epsilon == 1e-8 and seed_optimizer().epsilon == 1e-7
    y_true = np.array([0, 1])
    y_pred = keras.ops.convert_to_tensor(
        np.array([[1e-12, 1 - 1e-12] + [0] * 8, [0.1, 0.9] + [0] * 8], "float32")
    )
    losses = keras.ops.convert_to_numpy(Keras2Crossentropy().call(y_true, y_pred))
    np.testing.assert_allclose(losses, [-np.log(1e-7), -np.log(0.9)], rtol=1e-5)  # clipped at 1e-7
    with pytest.raises(ValueError, match="'numerics' must be one of 'keras3', 'keras2'; got 'keras1'"):
        seed_loss(numerics="keras1")
    model = compile_seed_model(build_seed_model(), numerics="keras2")
    assert isinstance(model.loss, Keras2Crossentropy) and model.optimizer.epsilon == 1e-8


def test_keras2_loss_gives_no_gradient_below_the_clip():
    import tensorflow as tf

    from fmnist_utils.models import Keras2Crossentropy

    y_pred = tf.Variable([[1e-9, 1 - 1e-9] + [0.0] * 8, [0.3, 0.7] + [0.0] * 8])
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(Keras2Crossentropy().call(np.array([0, 0]), y_pred))
    gradient = tape.gradient(loss, y_pred).numpy()
    assert gradient[0, 0] == 0.0 and gradient[1, 0] < 0.0  # the clipped image teaches nothing


def _reusable_cell(needle: str) -> dict:
    """Run notebook 02's reusable cell containing ``needle`` and return the names it defines."""
    return _notebook_cell("02_model_build.ipynb", needle, tag="reusable")


def test_notebook_02_model_is_the_package_model_layer_by_layer():
    from fmnist_utils.models import layer_spec

    notebook_model = _reusable_cell("def build_seed_cnn")["model"]
    assert layer_spec(notebook_model).equals(layer_spec(build_seed_model()))
    assert [layer.name for layer in notebook_model.layers] == [row[0] for row in SEED_TABLE]
    corrected = _reusable_cell("def build_seed_cnn")["build_seed_cnn"](input_bn_axis=-1)
    assert layer_spec(corrected).equals(layer_spec(build_seed_model("channel_bn")))


def test_notebook_02_optimizer_is_the_package_optimizer():
    cell = _reusable_cell("InverseTimeDecay")
    unnamed = [
        {k: v for k, v in o.get_config().items() if k != "name"}
        for o in (cell["optimizer"], seed_optimizer())
    ]
    assert unnamed[0] == unnamed[1]  # schedule, epsilon, betas...
    for step in (0, 1, 200, 1000, 6000):
        assert float(cell["schedule"](step)) == pytest.approx(float(seed_learning_rate()(step)), rel=1e-7)


def _notebook_cell(notebook: str, needle: str, namespace: dict | None = None, tag: str | None = None) -> dict:
    """Run the code cell of ``notebook`` (tagged ``tag``, if given) containing ``needle`` in ``namespace``;
    return the names it defines."""
    import nbformat

    from fmnist_utils.params import project_root

    nb = nbformat.read(project_root() / "notebooks" / notebook, as_version=4)
    cell = next(
        c
        for c in nb.cells
        if c.cell_type == "code" and needle in c.source and (tag is None or tag in c.metadata.get("tags", []))
    )
    namespace = {} if namespace is None else namespace
    exec(compile(cell.source, notebook, "exec"), namespace)
    return namespace


def test_notebook_05_vgg_network_is_the_package_network_layer_by_layer():
    from fmnist_utils.lab.networks import build_cnn
    from fmnist_utils.models import layer_spec

    notebook_model = _notebook_cell("05_beyond_the_seed.ipynb", "def build_vgg_cnn")["vgg"]
    package_model = build_cnn(conv_bn=True, arch="vgg")
    assert layer_spec(notebook_model).equals(layer_spec(package_model))
    assert [layer.name for layer in notebook_model.layers] == [layer.name for layer in package_model.layers]


def test_notebook_03_compiles_the_package_optimizer_and_loss():
    import keras

    names = _notebook_cell(
        "03_training.ipynb",
        "model.compile(",
        {
            "keras": keras,
            "build_seed_model": build_seed_model,
            "seed": 0,
            "variant": "seed",
            "precision": "float32",
        },
    )
    unnamed = [
        {k: v for k, v in o.get_config().items() if k != "name"}
        for o in (names["model"].optimizer, seed_optimizer())
    ]
    assert unnamed[0] == unnamed[1]  # Adam on InverseTimeDecay(1e-3, 1, 1e-3), epsilon, betas...
    assert names["model"].loss == seed_loss()
