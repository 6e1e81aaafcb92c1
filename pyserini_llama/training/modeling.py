"""Trainable RepLLaMA / RankLLaMA: the backbone (LoRA or full), the losses, and saving.

RepLLaMA: queries and passages are embedded as at inference (hidden state of the last real
token, EOS, L2-normalised); the loss is softmax cross-entropy of each query over *all* passages
of the batch (its own positive, its hard negatives, every other query's passages), scores
divided by a temperature. Under DDP the embeddings of every process are gathered first, so the
in-batch negatives span processes (Tevatron's ``_dist_gather_tensor``).

RankLLaMA: each (query, passage) pair gets the raw logit of the one-label ``score`` head read at
the last real token, as the reranker reads it; the loss is cross-entropy over each query's own
group with the positive at index 0. No in-batch negatives: a cross-encoder sees one pair at a time.

The saved checkpoint is what the inference classes and the castorini model-card code load:
a PEFT adapter (``FEATURE_EXTRACTION``, or ``SEQ_CLS`` with the ``score`` head in
``modules_to_save``) whose ``base_model_name_or_path`` is the ``--model`` the user gave, or a
full model directory with ``--full``; plus the tokenizer.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

from ..errors import ModelLoadError
from ..modeling.formatting import INPUT_FORMAT_FILE
from ..modeling.loading import load_backbone, resolve_model_source
from ..modeling.tokens import choose_pad_id, last_token_hidden
from ..modeling.trunk import SplitForward, num_layers
from ..modeling.trunk_cache import split_forward
from .arguments import TrainingArguments, TrainingConfigError

logger = logging.getLogger(__name__)


def load_trainable(args: TrainingArguments):
    """``(backbone, tokenizer)``: the base model with LoRA attached (or fully trainable), in train mode.

    With LoRA and a 16-bit dtype the frozen base is loaded in that dtype (half the memory) while
    the trainable weights stay float32; the forward pass then runs under autocast.
    """
    task = "embedding" if args.objective == "repllama" else "classification"
    if args.lora and resolve_model_source(args.model).kind == "peft":
        raise TrainingConfigError(
            f"{args.model} is a LoRA adapter; LoRA training starts from a base model "
            "(pass the base, or --full to fine-tune the merged model)"
        )
    dtype = args.dtype if args.lora else "float32"
    model, tokenizer = load_backbone(args.model, task, dtype=dtype, device=args.device, tokenizer_name=args.tokenizer)
    model.config.use_cache = False
    if args.gradient_checkpointing:
        # Non-reentrant checkpointing needs no input that requires grad, so it works with frozen embeddings (LoRA).
        options = {"use_reentrant": False}
        if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5 (the old name warns)
            model.activation_checkpointing_enable(options)
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=options)
    if args.lora:
        model = _attach_lora(model, args)
    for param in model.parameters():
        if param.requires_grad and param.dtype != torch.float32:
            param.data = param.data.float()
    model.train()
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    logger.info("trainable parameters: %d of %d (%.2f%%)", trainable, total, 100 * trainable / total)
    return model, tokenizer


def _attach_lora(model, args: TrainingArguments):
    from peft import LoraConfig, get_peft_model

    classification = args.objective == "rankllama"
    layers = {}
    if args.lora_layers is not None:
        total = num_layers(model)
        if args.lora_layers > total:
            raise TrainingConfigError(f"--lora-layers {args.lora_layers}: the model has only {total} decoder layers")
        # PEFT's own option, so the saved adapter_config.json says which layers carry LoRA and every
        # loader (ours, the model card's PeftModel.from_pretrained) applies it unchanged.
        layers = {"layers_to_transform": list(range(total - args.lora_layers, total)), "layers_pattern": "layers"}
    config = LoraConfig(
        r=args.lora_r,
        lora_alpha=args.lora_alpha,
        lora_dropout=args.lora_dropout,
        target_modules=list(args.lora_target_modules),
        task_type="SEQ_CLS" if classification else "FEATURE_EXTRACTION",
        modules_to_save=["score"] if classification else None,
        **layers,
    )
    try:
        peft_model = get_peft_model(model, config)
    except ValueError as exc:
        raise TrainingConfigError(f"--lora-target-modules: {str(exc).splitlines()[0]}") from None
    # What the loaders (ours and the model card's PeftConfig -> from_pretrained) will resolve.
    peft_model.peft_config["default"].base_model_name_or_path = args.model
    return peft_model


def hf_model(backbone):
    """The Hugging Face model inside a PEFT wrapper (LoRA layers injected in place), or itself."""
    return backbone.get_base_model() if hasattr(backbone, "get_base_model") else backbone


def world() -> tuple[int, int]:
    """``(rank, world_size)``; ``(0, 1)`` outside ``torch.distributed``."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def gather_with_grad(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate ``tensor`` from every process in rank order; gradient flows into the local part only.

    ``all_gather`` returns copies without autograd history, so the local slot is replaced by the
    local tensor itself (Tevatron does the same). Equal shapes on every rank are required.
    """
    rank, size = world()
    if size == 1:
        return tensor
    parts = [torch.empty_like(tensor) for _ in range(size)]
    dist.all_gather(parts, tensor.contiguous())
    parts[rank] = tensor
    return torch.cat(parts, dim=0)


def split_layer(backbone, args: TrainingArguments) -> int:
    """First decoder layer that trains: ``L - K`` with ``--lora-layers K``, else 0 (all of them)."""
    return num_layers(backbone) - args.lora_layers if args.lora_layers else 0


def build_forward(backbone, args: TrainingArguments, pad_id: int) -> SplitForward:
    """The backbone's forward pass with the frozen layers below the split run without autograd,
    from the trunk cache when ``--trunk-cache`` is given."""
    return split_forward(backbone, split_layer(backbone, args), args.trunk_cache, args.trunk_cache_dtype, pad_id)


#: Upper bound of a learned logit scale (temperature 0.01), as CLIP caps it at 100.
MAX_LOGIT_SCALE = 100.0


def distillation_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """``KL(softmax(teacher / T) || softmax(student / T))`` per row, averaged over rows.

    Rows are queries, columns the passages of each query's group. This is Tevatron's
    ``DistilTevatronTrainer`` loss (``kl_div(..., reduction="batchmean")``) with one temperature
    for both sides; the teacher side carries no gradient.
    """
    log_student = nn.functional.log_softmax(student.float() / temperature, dim=-1)
    target = nn.functional.softmax(teacher.detach().float() / temperature, dim=-1)
    return nn.functional.kl_div(log_student, target, reduction="batchmean")


class RepLLaMATrainModel(nn.Module):
    """Bi-encoder contrastive loss with in-batch and hard negatives (gathered across processes).

    With teacher scores and ``distil_weight`` W > 0 the loss is ``W * KL + (1 - W) * contrastive``,
    the KL over each query's own group (:func:`distillation_loss` on raw cosines); W = 1 is
    Tevatron's ``train_distil``.
    """

    def __init__(
        self,
        backbone,
        temperature: float = 0.01,
        forward: SplitForward | None = None,
        learn_temperature: bool = False,
        distil_weight: float = 0.0,
        distil_temperature: float = 1.0,
    ):
        super().__init__()
        self.backbone = backbone
        self.distil_weight, self.distil_temperature = distil_weight, distil_temperature
        self.split_forward = forward or SplitForward(backbone)
        # CLIP's learned logit scale, log(1 / temperature); a fixed temperature when not learned.
        self.log_scale = nn.Parameter(torch.tensor(math.log(1 / temperature)), requires_grad=learn_temperature)

    @property
    def temperature(self) -> float:
        return 1 / self.scale().item()

    def scale(self) -> torch.Tensor:
        return self.log_scale.exp().clamp(max=MAX_LOGIT_SCALE)

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.split_forward(input_ids, attention_mask)
        return nn.functional.normalize(last_token_hidden(hidden, attention_mask).float(), p=2, dim=-1)

    def forward(
        self, query_input_ids, query_attention_mask, passage_input_ids, passage_attention_mask, teacher_scores=None
    ):
        q = gather_with_grad(self.encode(query_input_ids, query_attention_mask))
        p = gather_with_grad(self.encode(passage_input_ids, passage_attention_mask))
        similarity = q @ p.T
        group_size = p.size(0) // q.size(0)
        target = torch.arange(q.size(0), device=similarity.device) * group_size  # each query's positive
        contrastive = nn.functional.cross_entropy(similarity * self.scale(), target)
        if teacher_scores is None or self.distil_weight == 0:
            return contrastive
        # Tevatron's train_distil: the raw similarities of each query's own group against the teacher's.
        rows = torch.arange(q.size(0), device=similarity.device)
        own = similarity.view(q.size(0), q.size(0), group_size)[rows, rows]
        teacher = gather_with_grad(teacher_scores.to(own.device))
        distil = distillation_loss(own, teacher, self.distil_temperature)
        return self.distil_weight * distil + (1 - self.distil_weight) * contrastive

    @property
    def gradient_scale(self) -> int:
        """Factor for the loss before ``backward`` so DDP's gradient *average* is the exact gradient.

        Every process computes the same global loss ``L`` (mean over all queries of all processes),
        but its backward reaches only its own shard's embeddings, so it yields only part of
        ``dL/dθ``; the parts of all processes *sum* to the full gradient. DDP averages (sum / N)
        instead, hence ``× N``, as Tevatron does. One process over the same global batch gets the
        same gradient (tests/test_ddp.py).
        """
        return world()[1]


class RankLLaMATrainModel(nn.Module):
    """Grouped softmax cross-entropy for a pointwise reranker: positive at index 0 of each group.

    With teacher scores and ``distil_weight`` W > 0 the loss is ``W * KL + (1 - W) * cross-entropy``:
    a listwise target (the teacher's softmax over the group) for a pointwise scorer.
    """

    def __init__(
        self,
        backbone,
        group_size: int,
        forward: SplitForward | None = None,
        distil_weight: float = 0.0,
        distil_temperature: float = 1.0,
    ):
        super().__init__()
        self.backbone = backbone
        self.group_size = group_size
        self.distil_weight, self.distil_temperature = distil_weight, distil_temperature
        self.split_forward = forward or SplitForward(backbone)

    def features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The last-token hidden state the ``score`` head reads."""
        return last_token_hidden(self.split_forward(input_ids, attention_mask), attention_mask)

    def logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """One logit per pair, read as :class:`RankLLaMAReranker` reads it (last attended position)."""
        return hf_model(self.backbone).score(self.features(input_ids, attention_mask))[:, 0].float()

    def forward(self, input_ids, attention_mask, teacher_scores=None):
        scores = self.logits(input_ids, attention_mask).view(-1, self.group_size)
        target = torch.zeros(scores.size(0), dtype=torch.long, device=scores.device)
        loss = nn.functional.cross_entropy(scores, target)
        if teacher_scores is None or self.distil_weight == 0:
            return loss
        distil = distillation_loss(scores, teacher_scores.to(scores.device), self.distil_temperature)
        return self.distil_weight * distil + (1 - self.distil_weight) * loss

    @property
    def gradient_scale(self) -> int:
        """1: each process's loss is the mean over its own queries, and DDP's average of those is
        the mean over all queries (every process has the same number of queries)."""
        return 1


def fit_score_head(
    features: torch.Tensor, group_size: int, l2_grid: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0, 10.0)
) -> tuple[torch.Tensor, dict]:
    """A linear probe for RankLLaMA's one-logit head: ``w`` minimising the grouped softmax loss
    (positive first in each group of ``features``' rows) plus ``l2 * |w|^2`` on standardised features.

    The L2 strength is chosen on a held-out fifth of the groups, then the probe is refitted on all.
    Standardising (centre, scale per dimension) makes L-BFGS converge despite LLaMA's few huge
    activation dimensions; it folds back into ``w / sigma`` exactly, because the centring adds
    the same constant to every logit and a softmax over a group ignores a constant.
    Returns ``(weight of shape (hidden,), report)``.
    """
    x = features.double()
    if x.size(0) % group_size:
        raise ValueError("features must hold whole groups")
    sigma = x.std(dim=0).clamp_min(1e-6)
    z = (x - x.mean(dim=0)) / sigma
    groups = z.size(0) // group_size
    z = z.view(groups, group_size, -1)
    held = max(1, groups // 5) if groups >= 5 else 0

    def loss_of(w, part):
        scores = part @ w
        return nn.functional.cross_entropy(scores, torch.zeros(part.size(0), dtype=torch.long)).item()

    def fit(part, l2):
        w = torch.zeros(z.size(-1), dtype=torch.float64, requires_grad=True)
        optimizer = torch.optim.LBFGS([w], lr=1, max_iter=200, line_search_fn="strong_wolfe")
        target = torch.zeros(part.size(0), dtype=torch.long)

        def closure():
            optimizer.zero_grad()
            with torch.enable_grad():
                loss = nn.functional.cross_entropy(part @ w, target) + l2 * w.square().sum()
                loss.backward()
            return loss

        optimizer.step(closure)
        return w.detach()

    l2, held_out_loss = l2_grid[-1], None
    if held:
        # A few hundred pairs in hundreds of dimensions separate perfectly: without this choice the probe
        # memorises its groups and starts training *above* chance on new queries.
        scored = sorted((loss_of(fit(z[held:], c), z[:held]), c) for c in l2_grid)
        held_out_loss, l2 = scored[0]
    w = fit(z, l2)
    if held_out_loss is not None and held_out_loss >= math.log(group_size):
        w = torch.zeros_like(w)  # no direction generalises: start from the neutral head (ln group)
    report = {
        "groups": groups,
        "group_size": group_size,
        "l2": l2,
        "loss_before": math.log(group_size),
        "loss_after": loss_of(w, z),
        "held_out_groups": held,
        "held_out_loss": held_out_loss,
    }
    return (w / sigma).float(), report


def set_score_head(backbone, weight: torch.Tensor) -> None:
    """Write ``weight`` into the trainable ``score`` head (PEFT's ``modules_to_save`` copy if wrapped)."""
    score = hf_model(backbone).score
    target = score.modules_to_save["default"] if hasattr(score, "modules_to_save") else score
    target.weight.data[0] = weight.to(target.weight.dtype)


def build_train_model(backbone, args: TrainingArguments, tokenizer=None) -> nn.Module:
    pad_id = choose_pad_id(tokenizer) if tokenizer is not None else 0
    forward = build_forward(backbone, args, pad_id)
    distil = {"distil_weight": args.distil_weight, "distil_temperature": args.distil_temperature}
    if args.objective == "repllama":
        return RepLLaMATrainModel(backbone, args.temperature, forward, args.learn_temperature, **distil)
    return RankLLaMATrainModel(backbone, args.group_size, forward, **distil)


def save_trained(
    backbone, tokenizer, directory: str | Path, text_case: str = "as-is", lengths: dict | None = None
) -> None:
    """Write the adapter (or the full model) and the tokenizer; the inference loaders read this directly.

    A ``text_case`` other than ``as-is`` and the ``lengths`` given (RankLLaMA: ``query_max_length`` and
    ``max_length``, the whole pair) are recorded in ``input_format.json``, so every loader serves the model
    with the input normalisation and lengths it was trained with.
    """
    directory = Path(directory)
    # Embeddings are never resized here; "auto" would look the base model up on the hub at every save.
    extra = {"save_embedding_layers": False} if hasattr(backbone, "peft_config") else {}
    try:
        backbone.save_pretrained(directory, **extra)
        tokenizer.save_pretrained(directory)
        if text_case != "as-is" or lengths:
            record = {"text_case": text_case, **(lengths or {})}
            (directory / INPUT_FORMAT_FILE).write_text(json.dumps(record) + "\n")
    except OSError as exc:
        raise ModelLoadError(f"cannot write the model to {directory}: {exc}") from None


def _read_safetensors(directory: Path, what: str) -> dict[str, torch.Tensor]:
    """Every tensor of the ``*.safetensors`` files in ``directory`` (a saved checkpoint or adapter)."""
    from safetensors.torch import load_file

    files = sorted(directory.glob("*.safetensors"))
    if not files:
        raise ModelLoadError(f"{directory}: no .safetensors weights in this {what}")
    state: dict[str, torch.Tensor] = {}
    for file in files:
        state.update(load_file(file))
    return state


def load_trained_weights(backbone, directory: str | Path) -> None:
    """Put the weights a checkpoint saved with :func:`save_trained` back into ``backbone`` (resumption)."""
    directory = Path(directory)
    state = _read_safetensors(directory, "checkpoint")
    if hasattr(backbone, "peft_config"):
        from peft import set_peft_model_state_dict

        result = set_peft_model_state_dict(backbone, state)
        # The backbone's frozen weights are "missing" from an adapter by design; trained ones must all be there.
        missing = [k for k in getattr(result, "missing_keys", []) if _is_trained_key(k)]
        unexpected = list(getattr(result, "unexpected_keys", []))
    else:
        result = backbone.load_state_dict(state, strict=False)
        missing, unexpected = list(result.missing_keys), list(result.unexpected_keys)
    if missing or unexpected:
        raise ModelLoadError(f"{directory}: saved weights do not fit the model ({key_mismatch(missing, unexpected)})")


def key_mismatch(missing: list[str], unexpected: list[str]) -> str:
    """``missing a, b, c ...; unexpected d``: the first few keys of a state that does not fit."""
    return "; ".join(
        f"{what} {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}"
        for what, keys in (("missing", missing), ("unexpected", unexpected))
        if keys
    )


def _is_trained_key(key: str) -> bool:
    """A PEFT state key of a weight the adapter trains (LoRA A/B, or a module saved whole such as the score head)."""
    return ".lora_" in key or "modules_to_save" in key


def _lora_key_suffix(key: str) -> str | None:
    """``layers.24.self_attn.q_proj.lora_A.weight`` for any PEFT LoRA key, whatever model wraps the layers;
    None for keys that are not LoRA weights (a saved ``score`` head)."""
    if ".lora_A." not in key and ".lora_B." not in key:
        return None
    marker = key.find("layers.")
    return key[marker:].replace(".default.", ".") if marker >= 0 else None


def load_lora_weights(backbone, directory: str | Path) -> None:
    """Copy the LoRA A/B matrices of the adapter saved in ``directory`` into ``backbone``'s LoRA layers,
    matched by decoder layer and projection, so an adapter saved under one task type (RepLLaMA's
    ``FEATURE_EXTRACTION``, keys ``base_model.model.layers.N...``) fits a model of another
    (RankLLaMA's ``SEQ_CLS``, ``base_model.model.model.layers.N...``). Every LoRA matrix on
    either side must find its partner with the same shape; anything else (a score head) is ignored.
    """
    directory = Path(directory)
    saved = {
        suffix: tensor
        for key, tensor in _read_safetensors(directory, "adapter").items()
        if (suffix := _lora_key_suffix(key)) is not None
    }
    ours = {
        suffix: param for name, param in backbone.named_parameters() if (suffix := _lora_key_suffix(name)) is not None
    }
    missing = sorted(set(ours) - set(saved))
    extra = sorted(set(saved) - set(ours))
    if missing or extra:
        raise ModelLoadError(f"{directory}: its LoRA layers do not match this model's ({key_mismatch(missing, extra)})")
    with torch.no_grad():
        for suffix, param in ours.items():
            if saved[suffix].shape != param.shape:
                raise ModelLoadError(
                    f"{directory}: {suffix} has shape {tuple(saved[suffix].shape)}, this model {tuple(param.shape)}"
                )
            param.copy_(saved[suffix].to(param.dtype))
