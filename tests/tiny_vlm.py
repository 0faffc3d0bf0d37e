"""A tiny, randomly initialised Qwen2.5-VL and its processor, built entirely offline.

`build_tiny_vlm(path)` writes a directory that `AutoModelForImageTextToText` and `AutoProcessor`
load exactly like a real Qwen2.5-VL checkout: same architecture, same chat template, same
special tokens, same (PIL) image processor. Only the sizes are tiny and the weights random,
so its replies are gibberish: use it to test plumbing, never content.

No hub: the byte-level BPE tokenizer is trained here on a few sentences (with Qwen2's
pre-tokenizer, so every string encodes without unknown tokens) and the image processor is the
PIL backend (the default "fast" one needs torchvision, which this project does not install).
"""

from __future__ import annotations

import json
from pathlib import Path

# Special tokens in Qwen2.5-VL's order; the chat template and the processor look them up by text.
SPECIAL_TOKENS = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
    "<|image_pad|>", "<|video_pad|>",
)

# Qwen2-VL / Qwen2.5-VL-Instruct's chat template, verbatim.
CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}"
    "{{ message['content'] }}<|im_end|>\n{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}"
    "Picture {{ image_count.value }}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}{% if add_vision_id %}"
    "Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

CORPUS = (
    "A person walks along a beach at sunset while waves roll in.",
    "The camera pans slowly across a city street full of cars and people.",
    'Return a JSON object: {"subject": "dog", "action": "runs", "camera": "static"}.',
    "You are a helpful assistant that describes video clips for training data.",
    "Close-up of hands typing on a keyboard, shallow depth of field, indoor lighting.",
)

# Image side limits: a 384-px keyframe becomes ~16 merged image tokens, which keeps a
# 4-image request a few hundred tokens long (the real model's processor allows ~1000 per image).
MIN_PIXELS = 28 * 28 * 4
MAX_PIXELS = 28 * 28 * 16


def _build_tokenizer(vocab_size: int = 400):
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX, Qwen2Tokenizer

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS), show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # all 256 bytes: nothing is unknown
    )
    bpe.train_from_iterator(CORPUS, trainer=trainer)
    model = json.loads(bpe.to_str())["model"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]
    tokenizer = Qwen2Tokenizer(
        vocab=model["vocab"], merges=merges, unk_token=None, bos_token=None,
        eos_token="<|im_end|>", pad_token="<|endoftext|>",
        additional_special_tokens=list(SPECIAL_TOKENS[1:]),
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def build_tiny_vlm(path: Path, seed: int = 0) -> Path:
    """Save a tiny random Qwen2.5-VL (model + processor) to `path`; returns `path`.

    The same seed gives the same weights. Takes a few seconds on CPU.
    """
    import torch
    from transformers import (
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
        Qwen2VLImageProcessorPil,
    )

    path = Path(path)
    tokenizer = _build_tokenizer()
    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in SPECIAL_TOKENS}
    image_processor = Qwen2VLImageProcessorPil(
        min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS, patch_size=14, temporal_patch_size=2, merge_size=2,
    )
    hidden = 64
    config = Qwen2_5_VLConfig(
        text_config={
            "vocab_size": len(tokenizer), "hidden_size": hidden, "intermediate_size": 128,
            "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
            "max_position_embeddings": 4096,
            # head_dim 16: the three M-RoPE sections (time, height, width) must sum to 16 / 2
            "rope_parameters": {"rope_type": "default", "mrope_section": [2, 3, 3], "rope_theta": 10000.0},
            "bos_token_id": None, "eos_token_id": ids["<|im_end|>"], "pad_token_id": ids["<|endoftext|>"],
        },
        vision_config={
            "depth": 1, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "patch_size": 14,
            "spatial_merge_size": 2, "temporal_patch_size": 2, "window_size": 56,
            "fullatt_block_indexes": [0], "out_hidden_size": hidden,
        },
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
    )
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(config).eval()
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    model.save_pretrained(path)
    # Saved piece by piece, as the files of a real checkout: Qwen2_5_VLProcessor itself cannot be
    # built here, because its constructor insists on a video processor (torchvision).
    tokenizer.save_pretrained(path)
    image_processor.save_pretrained(path)
    (path / "processor_config.json").write_text(json.dumps({"processor_class": "Qwen2_5_VLProcessor"}))
    return path
