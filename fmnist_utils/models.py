"""The seed CNN ("2 Conv+3 FC ~1.8M parameters", Keras 2017), its corrected variant, and its optimizer.

Seed architecture (channels-last here; the seed fed channels-first 1x28x28 images)::

    BatchNormalization (over the image *width*: 4 x 28 = 112 params, 56 non-trainable)
    Conv2D 64 5x5 relu (kernel random_uniform, bias random_normal)  -> 24x24x64     1,664
    MaxPooling2D 2                                                  -> 12x12x64
    Conv2D 512 5x5 relu                                             ->  8x8x512   819,712
    MaxPooling2D 2                                                  ->  4x4x512
    Flatten                                                         ->  8192
    Dense 128 relu                                                              1,048,704
    Dropout 0.35
    Dense 64 relu                                                                   8,256
    Dropout 0.35
    Dense 10 softmax                                                                  650
                                                                   total        1,879,098
"""

from __future__ import annotations

import keras
import pandas as pd
from keras import layers

from fmnist_utils.params import check_choice
from fmnist_utils.protocol import SEED_DECAY, SEED_LEARNING_RATE

INPUT_SHAPE = (28, 28, 1)
NUM_CLASSES = 10
VARIANTS = ("seed", "channel_bn")
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16", "auto")


def resolve_precision(precision: str = "auto") -> str:
    """The Keras dtype policy for ``precision``; ``"auto"`` picks what this machine runs fast.

    * a GPU with compute capability >= 8.0 (Ampere, Hopper...): ``mixed_bfloat16`` (no loss scaling);
      7.x (Volta, Turing): ``mixed_float16``;
    * a CPU with native bf16 instructions (AVX512_BF16 or AMX): ``mixed_bfloat16``;
    * anything else: ``float32`` (emulated bf16 would be slower than float32).
    """
    if check_choice("precision", precision, PRECISIONS) != "auto":
        return precision
    import tensorflow as tf

    for gpu in tf.config.list_physical_devices("GPU"):
        major, _ = tf.config.experimental.get_device_details(gpu).get("compute_capability", (0, 0))
        if major >= 8:
            return "mixed_bfloat16"
        if major == 7:
            return "mixed_float16"
    return "mixed_bfloat16" if cpu_has_native_bfloat16() else "float32"


def cpu_has_native_bfloat16() -> bool:
    """Whether this CPU multiplies bfloat16 in hardware (AVX512_BF16 or AMX flags in /proc/cpuinfo)."""
    try:
        flags = next(line for line in open("/proc/cpuinfo") if line.startswith("flags")).split()
    except (OSError, StopIteration):
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def build_seed_model(
    variant: str = "seed", precision: str = "float32", name: str | None = None
) -> keras.Model:
    """The seed CNN, uncompiled. ``variant="seed"``: the 2017 BatchNormalization over the image *width*
    (old Keras' ``axis=-1`` on channels-first input: 112 parameters); ``"channel_bn"``: over the channel (4).
    ``precision``: the dtype policy of every layer but the float32 softmax (``"auto"``: :func:`resolve_precision`)."""
    check_choice("variant", variant, VARIANTS)
    dtype = resolve_precision(precision)
    norm = layers.BatchNormalization(axis=2 if variant == "seed" else -1, name="input_bn", dtype=dtype)
    return classifier([norm, *seed_body(False, dtype)], dtype, name or f"seed_cnn_{variant}")


def classifier(stack: list[layers.Layer], dtype: str, name: str) -> keras.Model:
    """``stack`` between a 28x28x1 input and a 10-way float32 softmax, as a Sequential model of policy
    ``dtype``."""
    output = layers.Dense(NUM_CLASSES, activation="softmax", name="probabilities", dtype="float32")
    model = keras.Sequential([keras.Input(shape=INPUT_SHAPE, name="image"), *stack, output], name=name)
    # The model's own policy decides what compile() does: only a "mixed_float16" model gets its optimizer
    # wrapped in a LossScaleOptimizer, without which small float16 gradients underflow to zero.
    model.dtype_policy = dtype
    return model


def conv_block(
    name: str, filters: int, size: int, conv_bn: bool, dtype: str, padding: str = "valid", **init
) -> list[layers.Layer]:
    """A relu convolution, or with ``conv_bn`` convolution (no bias) -> BatchNormalization -> relu."""
    if not conv_bn:
        return [
            layers.Conv2D(filters, size, padding=padding, activation="relu", name=name, dtype=dtype, **init)
        ]
    return [
        layers.Conv2D(
            filters,
            size,
            padding=padding,
            use_bias=False,
            name=name,
            dtype=dtype,
            kernel_initializer=init.get("kernel_initializer", "glorot_uniform"),
        ),
        layers.BatchNormalization(name=f"{name}_bn", dtype=dtype),
        layers.Activation("relu", name=f"{name}_relu", dtype=dtype),
    ]


def seed_body(conv_bn: bool, dtype: str) -> list[layers.Layer]:
    """The seed's layers between the input normalisation and the classifier (module docstring)."""
    return [
        *conv_block(
            "conv1",
            64,
            5,
            conv_bn,
            dtype,
            kernel_initializer="random_uniform",
            bias_initializer="random_normal",
        ),
        layers.MaxPooling2D(2, name="pool1", dtype=dtype),
        *conv_block("conv2", 512, 5, conv_bn, dtype),
        layers.MaxPooling2D(2, name="pool2", dtype=dtype),
        layers.Flatten(name="flatten", dtype=dtype),
        layers.Dense(128, activation="relu", name="fc1", dtype=dtype),
        layers.Dropout(0.35, name="drop1", dtype=dtype),
        layers.Dense(64, activation="relu", name="fc2", dtype=dtype),
        layers.Dropout(0.35, name="drop2", dtype=dtype),
    ]


def seed_learning_rate(
    initial: float = SEED_LEARNING_RATE, decay: float = SEED_DECAY
) -> keras.optimizers.schedules.LearningRateSchedule:
    """Legacy Keras ``decay`` as a Keras 3 schedule: ``lr_t = initial / (1 + decay * t)``, t = optimizer steps.

    Keras 3 drops ``Adam(decay=...)`` with only a warning, which would train at a constant 1e-3;
    ``InverseTimeDecay`` with ``decay_steps=1`` and no staircase is the exact equivalent.
    """
    return keras.optimizers.schedules.InverseTimeDecay(
        initial, decay_steps=1, decay_rate=decay, staircase=False
    )


#: Keras 2.0 (2017) defaults that Keras 3 changed: Adam's epsilon (Keras 3: 1e-7) and the clip of predicted
#: probabilities before the log in the cross-entropy (Keras 3 computes it from the logits, unclipped).
KERAS2_ADAM_EPSILON = 1e-8
KERAS2_CLIP = 1e-7
#: ``"keras3"``: today's Keras numerics; ``"keras2"``: the 2017 seed's (Adam epsilon 1e-8, clipped loss).
NUMERICS = ("keras3", "keras2")


def seed_optimizer(
    initial: float = SEED_LEARNING_RATE, decay: float = SEED_DECAY, numerics: str = "keras3"
) -> keras.optimizers.Adam:
    """The seed's ``Adam(decay=0.001)``, faithfully: Adam on :func:`seed_learning_rate` (with Keras 2's
    epsilon 1e-8 where ``numerics="keras2"``)."""
    check_choice("numerics", numerics, NUMERICS)
    epsilon = KERAS2_ADAM_EPSILON if numerics == "keras2" else 1e-7
    return keras.optimizers.Adam(learning_rate=seed_learning_rate(initial, decay), epsilon=epsilon)


@keras.saving.register_keras_serializable(package="fmnist_utils")
class Keras2Crossentropy(keras.losses.Loss):
    """Keras 2.0's ``categorical_crossentropy`` on integer labels: the softmax output is renormalised and
    clipped to ``[1e-7, 1 - 1e-7]`` before the log, so an image whose true class gets a probability below
    1e-7 adds a constant loss and no gradient (Keras 3 on TensorFlow computes the loss from the logits,
    unclipped). ``from_logits=True`` takes a model's pre-softmax scores and applies the softmax first."""

    def __init__(self, from_logits: bool = False, name: str = "keras2_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.from_logits = bool(from_logits)

    def call(self, y_true, y_pred):
        ops = keras.ops
        y_pred = ops.softmax(y_pred, axis=-1) if self.from_logits else y_pred
        y_pred = y_pred / ops.sum(y_pred, axis=-1, keepdims=True)
        y_pred = ops.clip(y_pred, KERAS2_CLIP, 1.0 - KERAS2_CLIP)
        one_hot = ops.one_hot(ops.cast(ops.reshape(y_true, (-1,)), "int32"), ops.shape(y_pred)[-1])
        return -ops.sum(one_hot * ops.log(y_pred), axis=-1)

    def get_config(self):
        return {**super().get_config(), "from_logits": self.from_logits}


def seed_loss(numerics: str = "keras3") -> keras.losses.Loss | str:
    """The seed's loss (integer labels instead of one-hot: same loss): Keras 3's cross-entropy or Keras 2's
    clipped one (:class:`Keras2Crossentropy`)."""
    return (
        Keras2Crossentropy()
        if check_choice("numerics", numerics, NUMERICS) == "keras2"
        else "sparse_categorical_crossentropy"
    )


def compile_seed_model(
    model: keras.Model,
    optimizer: keras.optimizers.Optimizer | None = None,
    loss: keras.losses.Loss | str | None = None,
    numerics: str = "keras3",
) -> keras.Model:
    """Compile with the seed's optimizer and loss (unless given) and the accuracy metric."""
    model.compile(
        optimizer=optimizer or seed_optimizer(numerics=numerics),
        loss=loss or seed_loss(numerics),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )
    return model


def compute_policy(model: keras.Model) -> str:
    """The dtype policy of the layers that do the work (the first convolution or dense layer), which an
    augmentation or input layer in front of them does not share."""
    return next(
        layer.dtype_policy.name for layer in model.layers if isinstance(layer, (layers.Conv2D, layers.Dense))
    )


def parameter_table(model: keras.Model):
    """One row per layer: output shape, trainable and non-trainable parameter counts (a DataFrame)."""
    rows = []
    for layer in model.layers:
        trainable = sum(int(w.numpy().size) for w in layer.trainable_weights)
        frozen = sum(int(w.numpy().size) for w in layer.non_trainable_weights)
        rows.append(
            {
                "layer": layer.name,
                "type": type(layer).__name__,
                "output_shape": tuple(layer.output.shape[1:]),
                "trainable": trainable,
                "non_trainable": frozen,
                "total": trainable + frozen,
            }
        )
    return pd.DataFrame(rows)


#: The settings of each layer type that decide what it computes (what :func:`layer_spec` compares).
_SPEC_KEYS = (
    "axis",
    "filters",
    "kernel_size",
    "strides",
    "padding",
    "pool_size",
    "units",
    "activation",
    "rate",
    "use_bias",
    "kernel_initializer",
    "bias_initializer",
)


def layer_spec(model: keras.Model):
    """One row per layer: type, output shape, parameters and the settings that decide what it computes
    (initialisers by class name): two models with equal specs are the same network (a DataFrame)."""

    def setting(value):
        return value["class_name"] if isinstance(value, dict) and "class_name" in value else value

    rows = []
    for layer in model.layers:
        config = layer.get_config()
        rows.append(
            {
                "type": type(layer).__name__,
                "output_shape": tuple(layer.output.shape[1:]),
                "params": int(layer.count_params()),
                **{key: str(setting(config[key])) for key in _SPEC_KEYS if key in config},
            }
        )
    return pd.DataFrame(rows).fillna("")
