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
from keras import layers

INPUT_SHAPE = (28, 28, 1)
NUM_CLASSES = 10
SEED_TOTAL_PARAMS = 1_879_098
VARIANTS = ("seed", "channel_bn")
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16", "auto")
INPUT_NORMS = ("bn_width", "bn_channel", "rescale")
#: The network body after the input layer: the seed's (two 5x5 convolutions, three dense layers), a
#: VGG-style one (two blocks of two 3x3 convolutions, one dense layer), or its CPU-shaped lite form (one
#: convolution on the full-size maps instead of two).
ARCHS = ("seed", "vgg", "vgg_lite")
#: Each body's name in tables.
ARCH_NAMES = {
    "seed": "seed model",
    "vgg": "VGG-style model (notebook 05)",
    "vgg_lite": "VGG-lite model (notebook 06)",
}


def resolve_precision(precision: str = "auto") -> str:
    """The Keras dtype policy for ``precision``; ``"auto"`` picks what this machine runs fast.

    * a GPU with compute capability >= 8.0 (Ampere, Hopper...): ``mixed_bfloat16`` (no loss scaling);
      7.x (Volta, Turing): ``mixed_float16``;
    * a CPU with native bf16 instructions (AVX512_BF16 or AMX): ``mixed_bfloat16``;
    * anything else: ``float32`` (emulated bf16 would be slower than float32).
    """
    if precision not in PRECISIONS:
        raise ValueError(
            f"Unknown precision {precision!r}. Valid precisions: {', '.join(map(repr, PRECISIONS))}."
        )
    if precision != "auto":
        return precision
    import tensorflow as tf

    for gpu in tf.config.list_physical_devices("GPU"):
        major, _ = tf.config.experimental.get_device_details(gpu).get("compute_capability", (0, 0))
        if major >= 8:
            return "mixed_bfloat16"
        if major == 7:
            return "mixed_float16"
    return "mixed_bfloat16" if _cpu_has_bf16() else "float32"


def _cpu_has_bf16() -> bool:
    try:
        flags = next(line for line in open("/proc/cpuinfo") if line.startswith("flags")).split()
    except (OSError, StopIteration):
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def build_seed_model(
    variant: str = "seed", precision: str = "float32", name: str | None = None
) -> keras.Model:
    """Build the seed CNN (uncompiled).

    ``variant="seed"`` reproduces the 2017 model exactly, quirk included: old Keras'
    ``BatchNormalization()`` defaulted to ``axis=-1``, which on the seed's channels-first input
    (1, 28, 28) is the image *width*. So the layer learns 28 scales/offsets (plus 28 running means and
    variances), one per pixel column, instead of one per channel. In channels-last (28, 28, 1) the
    width is axis 2, so ``axis=2`` here gives the same 112 parameters (56 non-trainable) and the same
    computation. It still works as an input scaler for raw 0-255 pixels, which is why the seed did not
    need to divide by 255.

    ``variant="channel_bn"`` is the corrected layer: normalise over the (single) channel, i.e. one
    mean and variance for all pixels (4 parameters, 2 non-trainable); everything else is unchanged.

    ``precision`` is a Keras dtype policy for every layer but the output, which always computes its
    softmax in float32 for numerically stable probabilities; ``"auto"`` see :func:`resolve_precision`.
    """
    if variant not in VARIANTS:
        raise ValueError(f"Unknown variant {variant!r}. Valid variants: {', '.join(map(repr, VARIANTS))}.")
    return build_cnn(
        input_norm="bn_width" if variant == "seed" else "bn_channel",
        precision=precision,
        name=name or f"seed_cnn_{variant}",
    )


def augmentation_layers(
    *,
    shifts_and_rotations: bool = False,
    small_shifts: bool = False,
    flip: bool = False,
    erase: bool = False,
    seed: int = 0,
) -> list[layers.Layer]:
    """Keras' random image layers, active in training only, for images of raw 0-255 pixels.

    ``shifts_and_rotations``: shifts up to 10 % (2-3 pixels) and rotations up to 10 degrees;
    ``small_shifts``: shifts up to 2 pixels, nothing else; ``flip``: horizontal flips (a mirrored shirt is
    still a shirt, a mirrored 2 is no digit); ``erase``: random erasing (Zhong et al. 2017) of one
    rectangle of noise in half of the images, as if part of the object were hidden. Borders that shifts
    and rotations empty are filled with black, like the images' background.
    """
    fill = {"fill_mode": "constant", "fill_value": 0.0, "dtype": "float32"}
    augment = []
    if shifts_and_rotations:
        augment += [
            layers.RandomTranslation(0.1, 0.1, seed=seed, name="random_shift", **fill),
            layers.RandomRotation(10 / 360, seed=seed + 1, name="random_rotation", **fill),
        ]
    if small_shifts:
        shift = 2 / INPUT_SHAPE[0]
        augment.append(
            layers.RandomTranslation(shift, shift, seed=seed + 3, name="random_small_shift", **fill)
        )
    if flip:
        augment.append(layers.RandomFlip("horizontal", seed=seed + 2, name="random_flip", dtype="float32"))
    if erase:
        augment.append(
            layers.RandomErasing(
                factor=(0.5, 0.5), value_range=(0, 255), seed=seed + 4, name="random_erasing", dtype="float32"
            )
        )
    return augment


def build_cnn(
    input_norm: str = "bn_width",
    conv_bn: bool = False,
    augmentation: list[layers.Layer] | None = None,
    precision: str = "float32",
    name: str = "cnn",
    arch: str = "seed",
    pool_first: bool = False,
) -> keras.Model:
    """The seed's two convolutions and three dense layers, with the input treatment and extras to choose.

    ``input_norm``: ``"bn_width"`` (the seed's BatchNormalization over the image width), ``"bn_channel"``
    (over the channel) or ``"rescale"`` (divide by 255, no input BatchNormalization). ``conv_bn`` adds
    BatchNormalization between each convolution and its relu (the convolution then needs no bias).
    ``augmentation`` layers, if any, come first. ``arch="vgg"`` swaps the body for :func:`vgg_body`'s,
    ``arch="vgg_lite"`` for :func:`vgg_lite_body`'s. ``pool_first`` (needs ``conv_bn``) moves each max pooling
    from after a convolution's relu to straight after the convolution, so its BatchNormalization and relu work
    on a quarter of the values (:func:`pooled_first`). With the defaults this is exactly :func:`build_seed_model`.
    """
    if pool_first and not conv_bn:
        raise ValueError("pool_first moves pooling before each BatchNormalization: it needs conv_bn=True.")
    if input_norm not in INPUT_NORMS:
        raise ValueError(
            f"Unknown input_norm {input_norm!r}. Valid values: {', '.join(map(repr, INPUT_NORMS))}."
        )
    if arch not in ARCHS:
        raise ValueError(f"Unknown arch {arch!r}. Valid values: {', '.join(map(repr, ARCHS))}.")
    dtype = resolve_precision(precision)
    if input_norm == "rescale":
        stack = [layers.Rescaling(1 / 255, name="input_scale", dtype=dtype)]
    else:
        stack = [
            layers.BatchNormalization(
                axis=2 if input_norm == "bn_width" else -1, name="input_bn", dtype=dtype
            )
        ]
    body = {"seed": seed_body, "vgg": vgg_body, "vgg_lite": vgg_lite_body}[arch](conv_bn, dtype)
    stack += pooled_first(body) if pool_first else body
    stack.append(layers.Dense(NUM_CLASSES, activation="softmax", name="probabilities", dtype="float32"))
    model = keras.Sequential(
        [keras.Input(shape=INPUT_SHAPE, name="image"), *(augmentation or []), *stack], name=name
    )
    # The model's own policy decides what compile() does: only a "mixed_float16" model gets its optimizer
    # wrapped in a LossScaleOptimizer, without which small float16 gradients underflow to zero.
    model.dtype_policy = dtype
    return model


def _conv(
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


def pooled_first(body: list[layers.Layer]) -> list[layers.Layer]:
    """``body`` with each max pooling moved back to straight after the convolution before it (ahead of that
    convolution's BatchNormalization and relu). Max pooling commutes with any function of each value that
    never decreases, as relu and an inference-mode BatchNormalization with positive scales are: the same
    weights give the same outputs at inference. Training differs (BatchNormalization's statistics come from
    the pooled maps)."""
    moved: list[layers.Layer] = []
    for layer in body:
        if isinstance(layer, layers.MaxPooling2D):
            conv = max(i for i, earlier in enumerate(moved) if isinstance(earlier, layers.Conv2D))
            moved.insert(conv + 1, layer)
        else:
            moved.append(layer)
    return moved


def seed_body(conv_bn: bool, dtype: str) -> list[layers.Layer]:
    """The seed's layers between the input normalisation and the classifier (module docstring)."""
    return [
        *_conv(
            "conv1",
            64,
            5,
            conv_bn,
            dtype,
            kernel_initializer="random_uniform",
            bias_initializer="random_normal",
        ),
        layers.MaxPooling2D(2, name="pool1", dtype=dtype),
        *_conv("conv2", 512, 5, conv_bn, dtype),
        layers.MaxPooling2D(2, name="pool2", dtype=dtype),
        layers.Flatten(name="flatten", dtype=dtype),
        layers.Dense(128, activation="relu", name="fc1", dtype=dtype),
        layers.Dropout(0.35, name="drop1", dtype=dtype),
        layers.Dense(64, activation="relu", name="fc2", dtype=dtype),
        layers.Dropout(0.35, name="drop2", dtype=dtype),
    ]


def vgg_body(conv_bn: bool, dtype: str) -> list[layers.Layer]:
    """A VGG-style body (Simonyan & Zisserman 2014, scaled to 28x28): two blocks of two 3x3 'same'
    convolutions (32 then 64 filters), each block closed by 2x2 max pooling and dropout 0.25, then one
    dense layer of 256 and dropout 0.5. Two stacked 3x3 convolutions see a 5x5 patch, as one of the seed's
    5x5 convolutions does, with fewer weights and one more non-linearity; about 3x fewer FLOPs than the
    seed and 0.87 M parameters against 1.88 M."""
    return _vgg_blocks(((32, 2, 0.25), (64, 2, 0.25)), conv_bn, dtype)


def vgg_lite_body(conv_bn: bool, dtype: str) -> list[layers.Layer]:
    """:func:`vgg_body` shaped for a CPU: one 3x3 convolution (32 filters) on the 28x28 maps instead of two,
    and no dropout after the first pooling. The dropped convolution held 38% of the VGG-style body's FLOPs
    and worked on its largest maps, where the memory-bound layers around it (BatchNormalization, relu) cost
    the most."""
    return _vgg_blocks(((32, 1, 0.0), (64, 2, 0.25)), conv_bn, dtype)


def _vgg_blocks(blocks: tuple[tuple[int, int, float], ...], conv_bn: bool, dtype: str) -> list[layers.Layer]:
    """Blocks of (filters, 3x3 'same' convolutions, dropout after the 2x2 max pooling), then the dense 256."""
    body = []
    for block, (filters, convs, dropout) in enumerate(blocks, start=1):
        for conv in range(1, convs + 1):
            body += _conv(f"conv{block}_{conv}", filters, 3, conv_bn, dtype, padding="same")
        body.append(layers.MaxPooling2D(2, name=f"pool{block}", dtype=dtype))
        body += [layers.Dropout(dropout, name=f"pool{block}_drop", dtype=dtype)] if dropout else []
    return body + [
        layers.Flatten(name="flatten", dtype=dtype),
        layers.Dense(256, activation="relu", name="fc1", dtype=dtype),
        layers.Dropout(0.5, name="drop1", dtype=dtype),
    ]


def seed_learning_rate(
    initial: float = 1e-3, decay: float = 1e-3
) -> keras.optimizers.schedules.LearningRateSchedule:
    """Legacy Keras ``decay`` as a Keras 3 schedule: ``lr_t = initial / (1 + decay * t)``, t = optimizer steps.

    Keras 3 silently ignores ``Adam(decay=...)`` (only a warning), which would train at a constant
    1e-3; ``InverseTimeDecay`` with ``decay_steps=1`` and no staircase is the exact equivalent.
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
    initial: float = 1e-3, decay: float = 1e-3, numerics: str = "keras3"
) -> keras.optimizers.Adam:
    """The seed's ``Adam(decay=0.001)``, faithfully: Adam on :func:`seed_learning_rate` (with Keras 2's
    epsilon 1e-8 where ``numerics="keras2"``)."""
    check_numerics(numerics)
    epsilon = KERAS2_ADAM_EPSILON if numerics == "keras2" else 1e-7
    return keras.optimizers.Adam(learning_rate=seed_learning_rate(initial, decay), epsilon=epsilon)


def check_numerics(numerics: str) -> str:
    """``numerics`` if it is one of :data:`NUMERICS`, else a ValueError naming the valid values."""
    if numerics not in NUMERICS:
        raise ValueError(f"Unknown numerics {numerics!r}. Valid values: {', '.join(map(repr, NUMERICS))}.")
    return numerics


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


def one_cycle_schedule(
    steps_per_epoch: int, epochs: int, peak_lr: float = 2e-3, warmup_epochs: int = 1
) -> keras.optimizers.schedules.LearningRateSchedule:
    """A one-cycle style schedule: linear warm-up from ``peak_lr / 10`` to ``peak_lr`` over
    ``warmup_epochs``, then cosine decay to 0 at the end of ``epochs`` (Keras' ``CosineDecay``)."""
    if steps_per_epoch < 1 or epochs < 1:
        raise ValueError(f"steps_per_epoch and epochs must be >= 1, got {steps_per_epoch} and {epochs}.")
    warmup = min(warmup_epochs, epochs - 1) * steps_per_epoch
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=peak_lr / 10,
        decay_steps=max(1, epochs * steps_per_epoch - warmup),
        alpha=0.0,
        warmup_target=peak_lr if warmup else None,
        warmup_steps=warmup,
    )


@keras.saving.register_keras_serializable(package="fmnist_utils")
class SparseCrossentropyWithSmoothing(keras.losses.Loss):
    """Cross-entropy on integer labels with label smoothing (Keras' sparse loss has no ``label_smoothing``):
    the target is ``1 - s + s/K`` for the true class and ``s/K`` for the others."""

    def __init__(self, label_smoothing: float = 0.1, name: str = "smoothed_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}.")
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        ops = keras.ops
        one_hot = ops.one_hot(ops.cast(ops.reshape(y_true, (-1,)), "int32"), ops.shape(y_pred)[-1])
        return keras.losses.categorical_crossentropy(one_hot, y_pred, label_smoothing=self.label_smoothing)

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


def seed_loss(label_smoothing: float = 0.0, numerics: str = "keras3") -> keras.losses.Loss | str:
    """The seed's loss (integer labels instead of one-hot: same loss): Keras 3's cross-entropy, Keras 2's
    clipped one (:class:`Keras2Crossentropy`) or, with ``label_smoothing`` > 0,
    :class:`SparseCrossentropyWithSmoothing`."""
    if check_numerics(numerics) == "keras2":
        if label_smoothing:
            raise ValueError("numerics='keras2' is the seed's loss, which had no label smoothing.")
        return Keras2Crossentropy()
    return (
        SparseCrossentropyWithSmoothing(label_smoothing)
        if label_smoothing
        else "sparse_categorical_crossentropy"
    )


def compile_seed_model(
    model: keras.Model,
    optimizer: keras.optimizers.Optimizer | None = None,
    label_smoothing: float = 0.0,
    numerics: str = "keras3",
) -> keras.Model:
    """Compile with the seed's loss (:func:`seed_loss`), optimizer (unless given) and accuracy metric."""
    model.compile(
        optimizer=optimizer or seed_optimizer(numerics=numerics),
        loss=seed_loss(label_smoothing, numerics),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )
    return model


def compute_policy(model: keras.Model) -> str:
    """The dtype policy of the layers that do the work (the first convolution or dense layer), which an
    augmentation or input layer in front of them does not share."""
    return next(
        layer.dtype_policy.name for layer in model.layers if isinstance(layer, (layers.Conv2D, layers.Dense))
    )


def layer_forward_flops(layer: layers.Layer) -> int:
    """Floating-point operations of ``layer``'s forward pass for one image (multiply + add = 2) if it is a
    convolution or a dense layer (>99 % of the work), else 0."""
    if isinstance(layer, layers.Conv2D):
        kh, kw = layer.kernel_size
        out_h, out_w, out_c = layer.output.shape[1:]
        return 2 * out_h * out_w * out_c * kh * kw * layer.kernel.shape[2]
    if isinstance(layer, layers.Dense):
        return 2 * int(layer.kernel.shape[0]) * int(layer.kernel.shape[1])
    return 0


def forward_flops(model: keras.Model) -> int:
    """Floating-point operations of one forward pass of one image, summed over the convolutions and dense
    layers; training costs about 3x this (forward, plus gradients with respect to inputs and weights)."""
    return int(sum(layer_forward_flops(layer) for layer in model.layers))


def parameter_table(model: keras.Model):
    """One row per layer: output shape, trainable and non-trainable parameter counts (a DataFrame)."""
    import pandas as pd

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
    import pandas as pd

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
