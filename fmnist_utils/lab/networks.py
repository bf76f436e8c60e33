"""Notebook 05's and 06's variations on the seed network: input treatments, BatchNormalization after each
convolution, augmentation, VGG-style bodies, pooling first, label smoothing, the one-cycle schedule, FLOPs."""

from __future__ import annotations

import keras
from keras import layers

from fmnist_utils.models import INPUT_SHAPE, classifier, conv_block, resolve_precision, seed_body
from fmnist_utils.params import check_choice

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
    on a quarter of the values (:func:`pooled_first`). With the defaults this is exactly
    :func:`fmnist_utils.models.build_seed_model`.
    """
    if pool_first and not conv_bn:
        raise ValueError("pool_first moves pooling before each BatchNormalization: it needs conv_bn=True.")
    check_choice("input_norm", input_norm, INPUT_NORMS)
    check_choice("arch", arch, ARCHS)
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
    return classifier([*(augmentation or []), *stack], dtype, name)


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
            body += conv_block(f"conv{block}_{conv}", filters, 3, conv_bn, dtype, padding="same")
        body.append(layers.MaxPooling2D(2, name=f"pool{block}", dtype=dtype))
        body += [layers.Dropout(dropout, name=f"pool{block}_drop", dtype=dtype)] if dropout else []
    return body + [
        layers.Flatten(name="flatten", dtype=dtype),
        layers.Dense(256, activation="relu", name="fc1", dtype=dtype),
        layers.Dropout(0.5, name="drop1", dtype=dtype),
    ]


def one_cycle_schedule(
    steps_per_epoch: int, epochs: int, peak_lr: float = 2e-3, warmup_epochs: int = 1
) -> keras.optimizers.schedules.LearningRateSchedule:
    """A one-cycle style schedule: linear warm-up from ``peak_lr / 10`` to ``peak_lr`` over
    ``warmup_epochs`` (at most all epochs but one; half the steps of a one-epoch budget, none of a one-step
    one), then cosine decay to 0 at the end of ``epochs`` (Keras' ``CosineDecay``)."""
    if steps_per_epoch < 1 or epochs < 1:
        raise ValueError(
            f"steps_per_epoch and epochs must be >= 1; got steps_per_epoch={steps_per_epoch}, epochs={epochs}."
        )
    if warmup_epochs < 1:
        raise ValueError(f"warmup_epochs must be >= 1; got {warmup_epochs}.")
    warmup = min(warmup_epochs, epochs - 1) * steps_per_epoch or steps_per_epoch // 2
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


def recipe_loss(label_smoothing: float = 0.0) -> keras.losses.Loss | str:
    """The seed's cross-entropy, or with ``label_smoothing`` > 0 :class:`SparseCrossentropyWithSmoothing`."""
    return (
        SparseCrossentropyWithSmoothing(label_smoothing)
        if label_smoothing
        else "sparse_categorical_crossentropy"
    )
