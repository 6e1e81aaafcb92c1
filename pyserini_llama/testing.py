"""Tiny random LLaMA models, a Llama-2-like tokenizer, random LoRA adapters and training files, built offline.

Public so that the tests, the benchmarks and anyone testing code on top of pyserini-llama build the same
fixtures without a download: a model of a few hundred kilobytes that loads like a Llama-2 hub directory.
Importing this module is cheap and needs neither Pyserini nor Java (torch, transformers, tokenizers and peft
are imported by the functions that use them); it imports nothing else of the package.

The tokenizer behaves like Llama-2's where it matters for fidelity: sentencepiece-style ``▁``
word boundaries, BOS added by the tokenizer (``<s> $A`` / ``<s> $A <s> $B`` for pairs), no EOS
added, ``</s>`` written in a text is recognised as the EOS token, no pad token, unk id 0.
"""

from __future__ import annotations

import string
from pathlib import Path

TRAINING_TEXT = [
    "query: what is a lobster roll passage: Lobster roll A lobster roll is a sandwich from New England",
    "document: The giant panda is a bear species endemic to China, living in mountain forests.",
    "Scientific claims about cells, genes, proteins and mutations are verified against abstracts.",
    "The quick brown fox jumps over the lazy dog 0123456789 times; why? because (it) can!",
] * 20


def build_tokenizer(directory: Path):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first")
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<unk>", "<s>", "</s>"], initial_alphabet=list(string.printable.strip()) + ["▁"]
    )
    tok.train_from_iterator(TRAINING_TEXT, trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", tok.token_to_id("<s>"))]
    )
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    fast.save_pretrained(directory)
    return fast


def llama_config(vocab_size: int, **overrides):
    from transformers import LlamaConfig

    settings = dict(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=None,
        rms_norm_eps=1e-6,
    )
    settings.update(overrides)
    return LlamaConfig(**settings)


def build_tiny_llama(directory: Path, seed: int = 0, **overrides) -> Path:
    """A random ``LlamaForCausalLM`` checkpoint plus tokenizer, like a Llama-2 hub directory."""
    import torch
    from transformers import LlamaForCausalLM

    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(directory)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(llama_config(len(tokenizer), **overrides))
    model.save_pretrained(directory)
    return directory


def build_lora_adapter(base_dir: Path, directory: Path, task: str = "embedding", seed: int = 1) -> Path:
    """A random, non-identity LoRA adapter (task FEATURE_EXTRACTION, or SEQ_CLS with a random score head)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModel, AutoModelForSequenceClassification

    torch.manual_seed(seed)
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    if task == "classification":
        base = AutoModelForSequenceClassification.from_pretrained(base_dir, num_labels=1, pad_token_id=0)
        head = dict(task_type="SEQ_CLS", modules_to_save=["score"])
    else:
        base = AutoModel.from_pretrained(base_dir)
        head = dict(task_type="FEATURE_EXTRACTION")
    config = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=targets, init_lora_weights=False, **head)
    model = get_peft_model(base, config)
    if task == "classification":
        for name, param in model.named_parameters():
            if "modules_to_save" in name and "score" in name:
                with torch.no_grad():
                    param.normal_(0, 0.5)
    model.save_pretrained(directory)
    return directory


WORDS = ["panda", "lobster", "genes", "proteins", "fox", "dog", "mountain", "species"]


def write_train_file(path, n_queries=8, scores=True):
    """Tevatron groups of 1 positive + 4 negatives; with ``scores`` each passage carries a teacher ``"score"``
    (the positive 0.9, the negatives 0.8, 0.6, 0.4, 0.2), as ``python -m pyserini_llama.teacher`` writes them."""
    import json

    with open(path, "w") as f:
        for i in range(n_queries):
            word = WORDS[i % len(WORDS)]
            negatives = [{"docid": f"n{i}-{j}", "text": f"{WORDS[(i + j + 1) % 8]} text {j}"} for j in range(4)]
            positive = {"docid": f"p{i}", "title": word, "text": f"all about {word} here"}
            if scores:
                positive["score"] = 0.9
                for j, n in enumerate(negatives):
                    n["score"] = 0.8 - 0.2 * j
            line = {"query_id": str(i), "query": f"what about {word} {i}", "positive_passages": [positive],
                    "negative_passages": negatives}  # fmt: skip
            f.write(json.dumps(line) + "\n")
