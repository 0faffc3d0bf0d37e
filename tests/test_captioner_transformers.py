"""TransformersCaptioner on a tiny random Qwen2.5-VL built offline (tests/tiny_vlm.py).

A random model's replies are gibberish, so these tests check structure and plumbing: order,
token counts, determinism, batching, per-request failures and clear load errors.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from resources.captioners.base import CaptionRequest

MAX_NEW_TOKENS = 16
PROMPT = 'Describe this clip. Reply with JSON: {"subject": ..., "action": ..., "camera": ...}'


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from tests.tiny_vlm import build_tiny_vlm

    return build_tiny_vlm(tmp_path_factory.mktemp("tiny_vlm"))


@pytest.fixture(scope="module")
def captioner(tiny_model: Path):
    from resources.captioners.transformers import TransformersCaptioner

    captioner = TransformersCaptioner(str(tiny_model), batch_size=4, max_new_tokens=MAX_NEW_TOKENS)
    yield captioner
    captioner.close()


def keyframes(seed: int, count: int) -> list[np.ndarray]:
    """`count` random RGB keyframes at captioning size (short side 384), widths varying."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (384, 512 + 64 * k, 3), dtype=np.uint8) for k in range(count)]


def three_requests() -> list[CaptionRequest]:
    return [
        CaptionRequest("clip-a", keyframes(1, 2), PROMPT),
        CaptionRequest("clip-b", keyframes(2, 4), PROMPT, system="You caption video clips."),
        CaptionRequest("clip-c", keyframes(3, 3), PROMPT),
    ]


def test_batch_gives_one_result_per_request_in_order(captioner) -> None:
    requests = three_requests()
    results = captioner.caption(requests)

    assert [r.clip_id for r in results] == ["clip-a", "clip-b", "clip-c"]
    for result in results:
        assert result.error is None
        assert isinstance(result.text, str)
        assert result.prompt_tokens > 0
        assert 0 < result.completion_tokens <= MAX_NEW_TOKENS
        assert result.extra["finish_reason"] in {"stop", "length"}
        assert result.extra["batch_size"] == 3
        assert result.seconds > 0
    # prompt tokens include the image tokens: more keyframes, longer prompt
    tokens = {r.clip_id: r.prompt_tokens for r in results}
    assert tokens["clip-a"] < tokens["clip-c"] < tokens["clip-b"]


def test_prompt_uses_the_chat_template_with_images_before_the_text(captioner) -> None:
    request = three_requests()[1]
    text = captioner.prompt_text(request)

    assert text.count("<|image_pad|>") == 4
    assert text.index("You caption video clips.") < text.index("<|vision_start|>") < text.index(PROMPT)
    assert text.endswith("<|im_start|>assistant\n")


def test_greedy_is_deterministic_and_batching_changes_nothing(captioner, tiny_model: Path) -> None:
    from resources.captioners.transformers import TransformersCaptioner

    requests = three_requests()
    first = captioner.caption(requests)
    again = captioner.caption(requests)
    one_by_one = TransformersCaptioner(str(tiny_model), batch_size=1, max_new_tokens=MAX_NEW_TOKENS)
    alone = one_by_one.caption(requests)

    assert [r.text for r in again] == [r.text for r in first]
    # Left padding is masked and the positions follow the mask, so in float32 a padded row
    # decodes exactly as it does on its own.
    assert [(r.text, r.prompt_tokens, r.completion_tokens) for r in alone] == [
        (r.text, r.prompt_tokens, r.completion_tokens) for r in first
    ]
    assert all(r.extra["batch_size"] == 1 for r in alone)


def test_request_max_new_tokens_caps_its_reply(captioner) -> None:
    request = CaptionRequest("short", keyframes(1, 2), PROMPT, max_new_tokens=3)
    long, short = captioner.caption([three_requests()[0], request])

    assert short.completion_tokens <= 3
    assert long.completion_tokens > short.completion_tokens or long.extra["finish_reason"] == "stop"


def test_a_bad_request_fails_alone(captioner) -> None:
    good = three_requests()
    requests = [
        good[0],
        CaptionRequest("no-images", [], PROMPT),
        CaptionRequest("float-image", [np.zeros((384, 512, 3), dtype=np.float32)], PROMPT),
        # valid array, but the processor refuses it (aspect ratio over 200): the batch fails
        # inside the model call and is retried one request at a time
        CaptionRequest("sliver", [np.zeros((2, 600, 3), dtype=np.uint8)], PROMPT),
        good[2],
    ]
    results = captioner.caption(requests)
    reference = {r.clip_id: r.text for r in captioner.caption([good[0], good[2]])}

    assert [r.clip_id for r in results] == [r.clip_id for r in requests]
    by_id = {r.clip_id: r for r in results}
    assert "zero images" in by_id["no-images"].error
    assert "uint8" in by_id["float-image"].error
    assert "aspect ratio" in by_id["sliver"].error
    assert by_id["sliver"].attempts == 2
    for clip_id in ("clip-a", "clip-c"):
        assert by_id[clip_id].error is None
        assert by_id[clip_id].text == reference[clip_id]
        assert by_id[clip_id].completion_tokens > 0


def test_sampling_follows_the_torch_seed(tiny_model: Path) -> None:
    import torch

    from resources.captioners.transformers import TransformersCaptioner

    sampler = TransformersCaptioner(str(tiny_model), max_new_tokens=MAX_NEW_TOKENS, temperature=1.0)
    requests = three_requests()[:2]
    torch.manual_seed(7)
    first = [r.text for r in sampler.caption(requests)]
    torch.manual_seed(7)
    assert [r.text for r in sampler.caption(requests)] == first


def test_missing_model_directory_is_a_clear_error(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    from resources.captioners.transformers import TransformersCaptioner

    with pytest.raises(FileNotFoundError, match="does not exist.*local_files_only=False"):
        TransformersCaptioner(str(tmp_path / "no-such-model"))


def test_missing_models_extra_names_the_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from resources.captioners.transformers import TransformersCaptioner

    monkeypatch.setitem(sys.modules, "transformers", None)  # `import transformers` now fails
    with pytest.raises(ImportError, match=r"uv sync --extra models"):
        TransformersCaptioner(str(tmp_path))
