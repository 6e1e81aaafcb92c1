"""Int8 inference on CPU: SmoothQuant-smoothed decoder weights, int8 per output channel, activations
quantised per token at run time, on fbgemm's int8 GEMM (``quantized::linear_dynamic``).

Why: on an AVX2 CPU without AVX-512 or VNNI, fbgemm's int8 GEMM runs faster than fp32 while bf16/fp16
GEMMs run several times slower than fp32 (``precision/speed.py`` measures it on the machine at hand;
docs/cpu.md has the numbers). Plain dynamic quantisation of a LLaMA loses accuracy to a few activation channels that are far
larger than the rest, because one scale has to cover them. SmoothQuant (Xiao et al., 2023) moves that
range into the weights: input channel ``j`` of a linear layer is divided by

    s_j = max|X_j| ** alpha / max|W[:, j]| ** (1 - alpha)

and weight column ``j`` multiplied by it, which leaves the product unchanged. The division is folded
into whatever produces the input, so it costs nothing at run time:

* q/k/v and gate/up read an RMSNorm output: its weight is divided by ``s`` (one scale per group, the
  maximum over the group's columns);
* o_proj reads the attention output, which is linear in the values: v_proj's output rows are divided by
  ``s`` (one scale per key/value channel, shared by the query heads of its group under GQA);
* down_proj reads ``act(gate) * up``: up_proj's output rows are divided by ``s``.

The last two (``smooth_outputs``) are optional (:data:`SMOOTH_OUTPUTS`).

Scales are rounded to powers of two. Multiplying by a power of two is exact in floating point, so the
smoothed fp32 model computes bit for bit what the original did (a test checks it) and only the int8
rounding differs; and a calibration maximum that moves by float noise changes a scale only at a rounding
boundary. Calibration is a pure function of its token sequences (each run alone, no padding), so the
same inputs give the same quantised model and the same output bytes: resumable encoding stays exact.

Activations per token, not per tensor. ``torch.ao.quantization.quantize_dynamic``'s linear quantises its
whole input with one scale (and 7 bits on x86), which leaves embeddings far from fp32 even after smoothing,
because a few tokens carry activations far above the rest. :class:`Int8Linear` calls the same fbgemm kernel
on rows scaled to a maximum of 1 and scales the output rows back, so each token gets its own range.
fbgemm's AVX2 kernel adds pairs of u8 x s8 products in int16 and saturates: with 8-bit activations the
weights are therefore kept to 7 bits ([-63, 63] per output channel), which cannot overflow; torch's own
choice (``reduce_range``: 7-bit activations, 8-bit weights) is less accurate. docs/cpu.md compares them.

What stays fp32: embeddings, norms, attention itself, and everything outside the decoder layers
(RankLLaMA's score head). LoRA adapters are merged before any of this (``loading.merge_lora``).
Smoothing is applied to pre-norm LLaMA-style layers whose norm multiplies by its weight
(:data:`SMOOTHABLE_MODEL_TYPES`); other families are quantised without it.
"""

from __future__ import annotations

import hashlib
import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch
from torch import nn

from ..modeling.trunk import decoder_of

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: SmoothQuant's migration strength: 0 leaves activations alone, 1 moves all their range into weights.
DEFAULT_ALPHA = 0.5
#: Texts (or pairs) whose activations set the smoothing scales: "a few real inputs" of the data at hand.
CALIBRATION_TEXTS = 16
#: Whether o_proj and down_proj are smoothed too (through v_proj and up_proj): on the shipped RepLLaMA the
#: embeddings come a little closer to fp32 with it (a random tiny LLaMA has no outlier channels and gains nothing
#: from smoothing). ``benchmarks/bench_cpu_inference.py --int8-study`` measures both; docs/cpu.md has the numbers.
SMOOTH_OUTPUTS = True
#: Families whose decoder layers are pre-norm (``input_layernorm`` -> q/k/v, ``post_attention_layernorm``
#: -> gate/up) with an RMSNorm that multiplies by its weight, so the smoothing folds into that weight.
#: (Gemma's norm multiplies by ``1 + weight``, Phi-3 fuses q/k/v, OLMo-2 normalises after the projections.)
SMOOTHABLE_MODEL_TYPES = frozenset({"llama", "mistral", "qwen2", "qwen3"})
#: Activation/weight maxima are clamped here so that a dead channel gets a finite scale.
_EPS = 1e-5


def calibration_sample(items: Sequence[T], k: int = CALIBRATION_TEXTS) -> list[T]:
    """``k`` items spread evenly over ``items`` (all of them if fewer): deterministic, and not just the
    first few, which in a sorted corpus could all be alike."""
    n = len(items)
    if n <= k:
        return list(items)
    return [items[i * n // k] for i in range(k)]


@dataclass(frozen=True)
class Int8Settings:
    """How to quantise: SmoothQuant ``alpha``, whether o_proj/down_proj are smoothed as well, and two switches
    that turn the method's parts off for comparisons (``benchmarks/bench_cpu_inference.py --int8-study``)."""

    alpha: float = DEFAULT_ALPHA
    smooth_outputs: bool = SMOOTH_OUTPUTS
    smooth: bool = True  # False: no smoothing at all (for comparisons)
    per_token: bool = True  # False: one activation scale per tensor, as quantize_dynamic (for comparisons)


def _target_linears(layer: nn.Module) -> dict[str, nn.Linear]:
    return {name: module for name, module in layer.named_modules() if isinstance(module, nn.Linear)}


@torch.no_grad()
def activation_maxima(decoder: nn.Module, sequences: Sequence[Sequence[int]]) -> list[dict[str, torch.Tensor]]:
    """Per layer, per linear (by name inside the layer): max |input| of each input channel over every
    token of ``sequences``, each run alone so no padding enters the statistics."""
    maxima: list[dict[str, torch.Tensor]] = [{} for _ in decoder.layers]
    hooks = []

    def record(store: dict, name: str):
        def hook(_module, inputs):
            x = inputs[0].detach()
            amax = x.reshape(-1, x.shape[-1]).abs().amax(dim=0).float()
            store[name] = amax if name not in store else torch.maximum(store[name], amax)

        return hook

    for i, layer in enumerate(decoder.layers):
        for name, module in _target_linears(layer).items():
            hooks.append(module.register_forward_pre_hook(record(maxima[i], name)))
    device = decoder.embed_tokens.weight.device
    try:
        for ids in sequences:
            input_ids = torch.as_tensor([list(ids)], dtype=torch.long, device=device)
            decoder(input_ids=input_ids, attention_mask=torch.ones_like(input_ids))
    finally:
        for hook in hooks:
            hook.remove()
    return maxima


def _pow2(scale: torch.Tensor) -> torch.Tensor:
    return torch.exp2(torch.round(torch.log2(scale)))


def _scales(act_max: torch.Tensor, w_max: torch.Tensor, alpha: float) -> torch.Tensor:
    """``max|X| ** alpha / max|W| ** (1 - alpha)`` per channel, rounded to a power of two."""
    return _pow2((act_max.clamp(min=_EPS).pow(alpha) / w_max.clamp(min=_EPS).pow(1 - alpha)).clamp(min=_EPS))


def smoothing_scales(act_max: torch.Tensor, weights: Sequence[torch.Tensor], alpha: float) -> torch.Tensor:
    """SmoothQuant's per-input-channel scales for linears sharing one input, rounded to powers of two."""
    return _scales(act_max, torch.stack([w.detach().abs().amax(dim=0).float() for w in weights]).amax(dim=0), alpha)


@torch.no_grad()
def _fold_into_norm(norm: nn.Module, linears: Sequence[nn.Linear], scale: torch.Tensor) -> None:
    norm.weight.div_(scale.to(norm.weight.dtype))
    for linear in linears:
        linear.weight.mul_(scale.to(linear.weight.dtype))


@torch.no_grad()
def _fold_into_rows(producer: nn.Linear, consumer: nn.Linear, scale_rows: torch.Tensor, scale_cols: torch.Tensor):
    """``producer`` output rows / ``scale_rows``, ``consumer`` input columns * ``scale_cols`` (the same
    scales, expanded to the consumer's channels)."""
    producer.weight.div_(scale_rows.to(producer.weight.dtype)[:, None])
    if producer.bias is not None:
        producer.bias.div_(scale_rows.to(producer.bias.dtype))
    consumer.weight.mul_(scale_cols.to(consumer.weight.dtype))


def smooth_layer(layer: nn.Module, maxima: dict[str, torch.Tensor], alpha: float, smooth_outputs: bool) -> None:
    """Fold SmoothQuant scales into one LLaMA-style decoder layer (exactly: scales are powers of two)."""
    attn, mlp = layer.self_attn, layer.mlp
    qkv = [attn.q_proj, attn.k_proj, attn.v_proj]
    _fold_into_norm(
        layer.input_layernorm, qkv, smoothing_scales(maxima["self_attn.q_proj"], [m.weight for m in qkv], alpha)
    )
    gate_up = [mlp.gate_proj, mlp.up_proj]
    _fold_into_norm(
        layer.post_attention_layernorm,
        gate_up,
        smoothing_scales(maxima["mlp.gate_proj"], [m.weight for m in gate_up], alpha),
    )
    if not smooth_outputs:
        return
    # o_proj input channel (head h, dim d) is v channel (group of h, d): one scale per v channel.
    kv_channels = attn.v_proj.weight.shape[0]
    heads_per_group = attn.o_proj.weight.shape[1] // kv_channels
    head_dim = attn.head_dim
    groups = kv_channels // head_dim

    def per_kv(values: torch.Tensor) -> torch.Tensor:  # (heads * head_dim) -> (groups * head_dim), max over group
        return values.reshape(groups, heads_per_group, head_dim).amax(dim=1).reshape(-1)

    scale = _scales(
        per_kv(maxima["self_attn.o_proj"]), per_kv(attn.o_proj.weight.detach().abs().amax(dim=0).float()), alpha
    )
    expanded = scale.reshape(groups, 1, head_dim).expand(groups, heads_per_group, head_dim).reshape(-1)
    _fold_into_rows(attn.v_proj, attn.o_proj, scale, expanded)
    scale = smoothing_scales(maxima["mlp.down_proj"], [mlp.down_proj.weight], alpha)
    _fold_into_rows(mlp.up_proj, mlp.down_proj, scale, scale)


def smoothable(model) -> bool:
    """Whether :func:`smooth_layer` applies to this model's layers (family and module names)."""
    if getattr(model.config, "model_type", None) not in SMOOTHABLE_MODEL_TYPES:
        return False
    names = {"input_layernorm", "post_attention_layernorm", "self_attn", "mlp"}
    return all(all(hasattr(layer, n) for n in names) for layer in decoder_of(model).layers)


class Int8Linear(nn.Module):
    """A linear layer on fbgemm's int8 GEMM: weights int8 per output channel, activations quantised at run
    time, per token (``per_token``, the default) or per tensor (as ``quantize_dynamic``'s module does).

    Per token: each row of the input is divided by its largest magnitude before the kernel quantises the
    tensor, and the output row multiplied back, so every token uses the whole 8-bit range. Weights get 7
    bits then (see the module docstring: the AVX2 kernel saturates with 8 x 8 bits); per tensor, torch's
    defaults: 8-bit weights, 7-bit activations. The bias, if any, is added in fp32 after the product.
    """

    def __init__(self, linear: nn.Linear, per_token: bool = True):
        super().__init__()
        weight = linear.weight.detach().float()
        levels = 63 if per_token else 127
        scales = (weight.abs().amax(dim=1).clamp(min=1e-12) / levels).double()
        zero_points = torch.zeros(weight.shape[0], dtype=torch.long)
        with warnings.catch_warnings():  # quantised tensors are "deprecated" in torch 2.13; the kernels are not
            warnings.simplefilter("ignore")
            qweight = torch.quantize_per_channel(weight, scales, zero_points, 0, torch.qint8)
            self._packed = torch.ops.quantized.linear_prepack(qweight, None)
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.per_token = per_token
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach().float(), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.per_token:
            row_max = x.abs().amax(dim=-1, keepdim=True).clamp(min=1e-12)
            y = torch.ops.quantized.linear_dynamic(x / row_max, self._packed, False) * row_max
        else:
            y = torch.ops.quantized.linear_dynamic(x, self._packed, True)
        return y if self.bias is None else y + self.bias

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, per_token={self.per_token}"


def use_fbgemm() -> str:
    """Select the x86 (fbgemm) quantised engine where available; returns the engine in use."""
    if torch.backends.quantized.engine not in ("x86", "fbgemm"):
        for engine in ("x86", "fbgemm"):
            if engine in torch.backends.quantized.supported_engines:
                torch.backends.quantized.engine = engine
                break
    return torch.backends.quantized.engine


def quantize_linears(module: nn.Module, per_token: bool = True) -> int:
    """Replace every ``nn.Linear`` inside ``module`` by an :class:`Int8Linear`; returns how many."""
    use_fbgemm()
    replaced = 0
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.Linear):
                setattr(parent, name, Int8Linear(child, per_token))
                replaced += 1
    return replaced


def sequences_digest(sequences: Sequence[Sequence[int]]) -> str:
    """A short hash of token sequences (the calibration inputs, for caches keyed on the model)."""
    h = hashlib.sha256()
    for ids in sequences:
        data = np.asarray(ids, dtype=np.int64).tobytes()
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()[:16]


class Int8Quantizer:
    """Turns a loaded fp32 model into its int8 form once, on the first calibration inputs it is given.

    Calibration needs real inputs, which a model loader does not have, so the encoder and reranker hold
    one of these and call :meth:`calibrate` with (a sample of) the texts they are about to process.
    Later calls are no-ops: the model is quantised in place and its fp32 weights are gone.
    """

    def __init__(self, model, settings: Int8Settings | None = None):
        if next(model.parameters()).device.type != "cpu":
            raise ValueError("int8 inference runs on CPU only (fbgemm); use bfloat16 on a GPU")
        if next(model.parameters()).dtype != torch.float32:
            raise ValueError("int8 quantisation starts from float32 weights")
        self.model = model
        self.settings = settings or Int8Settings()
        self.calibration: str | None = None  # digest of the calibration sequences once done

    @property
    def done(self) -> bool:
        return self.calibration is not None

    def calibrate(self, sequences: Sequence[Sequence[int]]) -> None:
        """Smooth (from ``sequences``' activations) and quantise the decoder layers, unless done already."""
        if self.done:
            return
        sequences = [list(s) for s in sequences if len(s)]
        if not sequences:
            raise ValueError("int8 calibration needs at least one non-empty input")
        decoder = decoder_of(self.model)
        settings = self.settings
        smooth = settings.smooth and smoothable(self.model)
        if settings.smooth and not smooth:
            logger.warning(
                "%s layers are not LLaMA-style pre-norm: quantising to int8 without SmoothQuant smoothing",
                getattr(self.model.config, "model_type", "?"),
            )
        if smooth:
            maxima = activation_maxima(decoder, sequences)
            for layer, layer_maxima in zip(decoder.layers, maxima, strict=True):
                smooth_layer(layer, layer_maxima, settings.alpha, settings.smooth_outputs)
        replaced = sum(quantize_linears(layer, settings.per_token) for layer in decoder.layers)
        self.calibration = sequences_digest(sequences)
        logger.info(
            "int8: %d linear layers quantised (%s engine, activations per %s), %s; calibrated on %d input(s), %d tokens",
            replaced,
            torch.backends.quantized.engine,
            "token" if settings.per_token else "tensor",
            f"SmoothQuant alpha {settings.alpha}" + (" incl. o_proj/down_proj" if settings.smooth_outputs else "")
            if smooth
            else "no smoothing",
            len(sequences),
            sum(len(s) for s in sequences),
        )

    def describe(self) -> dict:
        """What decides the quantised weights (for fingerprints of outputs made with them)."""
        s = self.settings
        return {
            "alpha": s.alpha,
            "smooth": s.smooth,
            "smooth_outputs": s.smooth_outputs,
            "per_token": s.per_token,
            "calibration": self.calibration,
            "engine": torch.backends.quantized.engine,
        }
