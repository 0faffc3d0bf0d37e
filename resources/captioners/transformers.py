"""Captioner backend: a local vision-language model (Qwen2.5-VL class) run with transformers.

    captioner = TransformersCaptioner("/models/Qwen2.5-VL-7B-Instruct")
    results = captioner.caption(requests)  # one CaptionResult per request, in order

The model and processor load once, through the Auto classes, from a local directory (never
a download unless `local_files_only=False`). Each request becomes one chat: an optional system
turn, then one user turn holding the clip's keyframes in time order followed by the prompt,
rendered by the processor's own chat template. Requests are generated in batches (left
padding); greedy decoding unless `temperature > 0`. A batch that fails is retried one request
at a time, so a bad clip only fails itself: its result has `error` set, nothing raises.

torch and transformers are the optional `models` extra and are imported only when a
captioner is built.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from resources.captioners.base import CaptionRequest, CaptionResult

DTYPES = ("auto", "bfloat16", "float16", "float32")


def _import_models_extra() -> tuple[Any, Any]:
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise ImportError(
            "TransformersCaptioner needs torch and transformers, the optional `models` extra: "
            "run `uv sync --extra models`"
        ) from exc
    return torch, transformers


def check_request(request: CaptionRequest) -> str | None:
    """Why this request cannot be captioned (no keyframes, a keyframe that is not RGB uint8), or None."""
    if not request.images:
        return "no keyframes: the request has zero images"
    for index, image in enumerate(request.images):
        if not isinstance(image, np.ndarray):
            return f"keyframe {index}: expected a numpy array, got {type(image).__name__}"
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 or 0 in image.shape:
            return (f"keyframe {index}: expected an RGB uint8 array (H, W, 3), "
                    f"got {image.dtype} {tuple(image.shape)}")
    return None


def _images_only_processor_class(processor_class: type) -> type:
    """`processor_class` without its video processor.

    Qwen2-VL-class processors insist on a video processor, and in transformers 5 every video
    processor needs torchvision, which this project does not install (its registry build does
    not match a CPU torch). We only ever send images, so we load the same class minus that part.
    """
    attributes = [a for a in processor_class.get_attributes() if a != "video_processor"]
    return type(processor_class.__name__, (processor_class,),
                {"get_attributes": classmethod(lambda cls: list(attributes))})


def _load_processor(transformers: Any, model_path: str, local_files_only: bool) -> Any:
    try:
        return transformers.AutoProcessor.from_pretrained(model_path, local_files_only=local_files_only)
    except ImportError as exc:
        if "torchvision" not in str(exc).lower():
            raise
    from transformers.models.auto.processing_auto import PROCESSOR_MAPPING

    config = transformers.AutoConfig.from_pretrained(model_path, local_files_only=local_files_only)
    processor_class = _images_only_processor_class(PROCESSOR_MAPPING[type(config)])
    return processor_class.from_pretrained(model_path, local_files_only=local_files_only)


class TransformersCaptioner:
    """The `Captioner` protocol on a local transformers image-text-to-text model.

    `device="auto"` picks cuda when torch sees a GPU, else cpu; `dtype="auto"` is bfloat16 on
    cuda and float32 on cpu. Results carry per-request token counts (`prompt_tokens` counts the
    image tokens; `completion_tokens` counts the end-of-turn token when one came), `seconds`
    (the request's share of its batch) and `extra["finish_reason"]` ("stop", or "length" when
    the reply hit max_new_tokens and may be cut short).
    """

    name = "transformers"

    def __init__(self, model_path: str, device: str = "auto", dtype: str = "auto", batch_size: int = 4,
                 max_new_tokens: int = 256, local_files_only: bool = True, temperature: float = 0.0):
        if batch_size < 1:
            raise ValueError(f"TransformersCaptioner: batch_size must be >= 1, got {batch_size}")
        if dtype not in DTYPES:
            raise ValueError(f"TransformersCaptioner: dtype '{dtype}' is not one of {', '.join(DTYPES)}")
        torch, transformers = _import_models_extra()
        self.model = str(model_path)
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
        if dtype == "auto":
            dtype = "bfloat16" if self.device.startswith("cuda") else "float32"
        self.dtype = dtype
        if local_files_only and not Path(self.model).is_dir():
            raise FileNotFoundError(
                f"TransformersCaptioner: model directory '{self.model}' does not exist. Point model_path at "
                "a local checkout (config.json, weights, processor files), or pass local_files_only=False "
                "to let transformers download a hub id."
            )
        self._torch = torch
        self._processor = _load_processor(transformers, self.model, local_files_only)
        self._tokenizer = self._processor.tokenizer
        # Decoder-only generation continues from the last position: pad on the left.
        self._tokenizer.padding_side = "left"
        self._model = transformers.AutoModelForImageTextToText.from_pretrained(
            self.model, dtype=getattr(torch, dtype), local_files_only=local_files_only,
        ).to(self.device).eval()
        self._generation = self._generation_config()
        eos = self._generation.eos_token_id
        self._stop_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        if self._tokenizer.eos_token_id is not None:
            self._stop_ids.add(self._tokenizer.eos_token_id)

    def _generation_config(self) -> Any:
        """The model's own generation config (stop tokens, repetition penalty) with our decoding."""
        config = copy.deepcopy(self._model.generation_config)
        config.max_new_tokens = self.max_new_tokens
        if self.temperature > 0:
            config.do_sample, config.temperature = True, self.temperature
        else:
            # Checkpoints often ship sampling defaults; greedy must not inherit them.
            config.do_sample, config.temperature, config.top_p, config.top_k = False, None, None, None
        if config.pad_token_id is None:
            config.pad_token_id = self._tokenizer.pad_token_id
        if config.pad_token_id is None:
            eos = config.eos_token_id
            config.pad_token_id = eos[0] if isinstance(eos, list) else eos
        return config

    def prompt_text(self, request: CaptionRequest) -> str:
        """The request rendered by the processor's chat template, image placeholders included."""
        messages: list[dict[str, Any]] = []
        if request.system:
            messages.append({"role": "system", "content": [{"type": "text", "text": request.system}]})
        content = [{"type": "image"} for _ in request.images] + [{"type": "text", "text": request.prompt}]
        messages.append({"role": "user", "content": content})
        return self._processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def inputs(self, requests: list[CaptionRequest]) -> Any:
        """The processor's model inputs for a batch of valid requests, on the model's device and dtype."""
        texts = [self.prompt_text(r) for r in requests]
        # PIL, not arrays: the processor would guess the channel axis of an array (a 3-px-high
        # frame reads as channels-first)
        images = [[Image.fromarray(image) for image in r.images] for r in requests]
        batch = self._processor(text=texts, images=images, padding=True, return_tensors="pt")
        return batch.to(self.device, dtype=self._model.dtype)

    def _generate(self, requests: list[CaptionRequest], attempts: int) -> list[CaptionResult]:
        start = time.perf_counter()
        limits = [min(r.max_new_tokens, self.max_new_tokens) for r in requests]
        config = copy.copy(self._generation)
        config.max_new_tokens = max(limits)
        inputs = self.inputs(requests)
        with self._torch.inference_mode():
            sequences = self._model.generate(**inputs, generation_config=config)
        new_tokens = sequences[:, inputs["input_ids"].shape[1]:].tolist()
        prompt_tokens = inputs["attention_mask"].sum(dim=1).tolist()
        share = (time.perf_counter() - start) / len(requests)
        results = []
        for request, tokens, limit, prompt in zip(requests, new_tokens, limits, prompt_tokens, strict=True):
            tokens = tokens[:limit]  # greedy: a shorter limit is the same reply stopped earlier
            stop = next((i for i, token in enumerate(tokens) if token in self._stop_ids), None)
            reply = tokens if stop is None else tokens[:stop]
            results.append(CaptionResult(
                clip_id=request.clip_id,
                text=self._tokenizer.decode(reply, skip_special_tokens=True),
                prompt_tokens=int(prompt),
                completion_tokens=len(tokens) if stop is None else stop + 1,
                seconds=share,
                attempts=attempts,
                extra={"finish_reason": "length" if stop is None else "stop", "batch_size": len(requests),
                       "device": self.device, "dtype": self.dtype},
            ))
        return results

    def _caption_alone(self, request: CaptionRequest, attempts: int) -> CaptionResult:
        start = time.perf_counter()
        try:
            return self._generate([request], attempts)[0]
        except Exception as exc:  # the protocol: a failed clip is a result, never an exception
            return CaptionResult(clip_id=request.clip_id, error=f"{type(exc).__name__}: {exc}",
                                 seconds=time.perf_counter() - start, attempts=attempts)

    def caption(self, requests: list[CaptionRequest]) -> list[CaptionResult]:
        """One result per request, in order; invalid requests and failed generations set `error`."""
        results: dict[int, CaptionResult] = {}
        valid = []
        for index, request in enumerate(requests):
            problem = check_request(request)
            if problem:  # attempts=0: never sent to the model
                results[index] = CaptionResult(clip_id=request.clip_id, error=problem, attempts=0)
            else:
                valid.append(index)
        # Batch requests of similar length together: left padding costs compute on every layer.
        valid.sort(key=lambda i: (len(requests[i].images), len(requests[i].prompt) + len(requests[i].system)))
        for first in range(0, len(valid), self.batch_size):
            chunk = valid[first : first + self.batch_size]
            if len(chunk) == 1:
                results[chunk[0]] = self._caption_alone(requests[chunk[0]], attempts=1)
                continue
            try:
                batch = self._generate([requests[i] for i in chunk], attempts=1)
            except Exception:  # retried one by one below, so only the bad request fails
                if self.device.startswith("cuda"):
                    self._torch.cuda.empty_cache()
                batch = [self._caption_alone(requests[i], attempts=2) for i in chunk]
            for index, result in zip(chunk, batch, strict=True):
                results[index] = result
        return [results[index] for index in range(len(requests))]

    def close(self) -> None:
        """Free the model (and GPU memory); the captioner is unusable afterwards."""
        self._model = None
        self._processor = None
        if self.device.startswith("cuda"):
            self._torch.cuda.empty_cache()
