"""Benchmark: captioning throughput of TransformersCaptioner against plain `model.generate`.

    uv run python -m bench.captioning [--model PATH] [--device auto|cpu|cuda] [--clips N]
        [--batch-size N] [--max-new-tokens N] [--openai-url URL --openai-model NAME]

Both paths caption the same clips (four keyframes each, short side 384, cut from the shared
footage set when it is there, random pixels otherwise) with the same model object, batch size,
max_new_tokens and greedy decoding. "plain" is the loop a user would write by hand (chat
template, processor, `model.generate`, in input order); "captioner" is `caption()` with its
validation, sorting, per-request token accounting and error handling. The ratio captioner /
plain shows what the wrapper costs. Each path runs `--rounds` times, alternating, after one
warm-up batch; the best round counts (other work shares these cores).

Without `--model` it builds the tiny random Qwen2.5-VL of the tests into
.vcurate/bench/tiny_vlm: its figures measure plumbing overhead, not a real model's speed.
On CPU everything runs on one thread and we report CPU seconds per caption (process_time)
beside wall time. With `--openai-url` it also captions the clips through an OpenAI-compatible
server (resources/captioners/openai.py).

Results are printed and written to .vcurate/bench/captioning.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

from resources.captioners.base import CaptionRequest, CaptionResult

STATE = Path(".vcurate/bench")
SHORT_SIDE = 384
KEYFRAMES = 4
PROMPT = (
    "These are keyframes of one video clip, in time order. Describe the clip for a text-to-video "
    'training set. Reply with one JSON object: {"subject": str, "action": str, "setting": str, '
    '"camera": str, "style": str, "caption": str}.'
)
SYSTEM = "You write accurate, concrete captions of video clips."


def keyframes_from_footage(footage: Path, clips: int) -> list[list[np.ndarray]]:
    """Up to `clips` clips of four frames spread over one video each, resized to short side 384."""
    out: list[list[np.ndarray]] = []
    for path in sorted(footage.glob("*")):
        if len(out) >= clips:
            break
        try:
            with av.open(str(path)) as container:
                frames = [f.to_ndarray(format="rgb24") for f, _ in zip(container.decode(video=0), range(300),
                                                                        strict=False)]
        except (av.FFmpegError, ValueError):
            continue
        if len(frames) < KEYFRAMES:
            continue
        picks = np.linspace(0, len(frames) - 1, KEYFRAMES).round().astype(int)
        out.append([resize_short_side(frames[i]) for i in picks])
    return out


def resize_short_side(image: np.ndarray, short: int = SHORT_SIDE) -> np.ndarray:
    height, width = image.shape[:2]
    scale = short / min(height, width)
    return cv2.resize(image, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)


def build_requests(footage: Path | None, clips: int, max_new_tokens: int, seed: int) -> list[CaptionRequest]:
    frames = keyframes_from_footage(footage, clips) if footage and footage.is_dir() else []
    rng = np.random.default_rng(seed)
    while len(frames) < clips:  # no footage (or too little): random 16:9 keyframes
        frames.append([rng.integers(0, 256, (SHORT_SIDE, 683, 3), dtype=np.uint8) for _ in range(KEYFRAMES)])
    # Real footage runs out before --clips does: reuse it, cycling.
    return [CaptionRequest(f"clip-{i:04d}", frames[i % len(frames)], PROMPT, system=SYSTEM,
                           max_new_tokens=max_new_tokens) for i in range(clips)]


def count_completion(tokens: list[int], stop_ids: set[int]) -> int:
    """Generated tokens up to and including the first stop token (what the captioner reports)."""
    stop = next((i for i, token in enumerate(tokens) if token in stop_ids), None)
    return len(tokens) if stop is None else stop + 1


def plain_generate(processor: Any, model: Any, requests: list[CaptionRequest], batch_size: int,
                   max_new_tokens: int, stop_ids: set[int]) -> tuple[int, int]:
    """The hand-written loop; returns (captions, completion tokens)."""
    import torch

    captions = tokens = 0
    for first in range(0, len(requests), batch_size):
        batch = requests[first : first + batch_size]
        texts = [processor.apply_chat_template(
            [{"role": "system", "content": [{"type": "text", "text": r.system}]},
             {"role": "user", "content": [*({"type": "image"} for _ in r.images),
                                          {"type": "text", "text": r.prompt}]}],
            tokenize=False, add_generation_prompt=True) for r in batch]
        inputs = processor(text=texts, images=[r.images for r in batch], padding=True, return_tensors="pt")
        inputs = inputs.to(model.device, dtype=model.dtype)
        with torch.inference_mode():
            out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
        for row in out[:, inputs["input_ids"].shape[1]:].tolist():
            tokens += count_completion(row, stop_ids)
        captions += len(batch)
    return captions, tokens


def timed(run) -> dict[str, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    captions, tokens, errors = run()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"captions": captions, "completion_tokens": tokens, "errors": errors, "wall_s": wall,
            "cpu_s": cpu, "captions_per_s": captions / wall, "tokens_per_s": tokens / wall,
            "cpu_s_per_caption": cpu / max(captions, 1), "wall_s_per_caption": wall / max(captions, 1)}


def tally(results: list[CaptionResult]) -> tuple[int, int, int]:
    ok = [r for r in results if r.error is None]
    return len(ok), sum(r.completion_tokens for r in ok), len(results) - len(ok)


def run_openai(args: argparse.Namespace, requests: list[CaptionRequest]) -> dict[str, float] | None:
    try:
        from resources.captioners.openai import OpenAICaptioner
    except ImportError as exc:
        print(f"OpenAI-compatible server: skipped ({exc})")
        return None
    captioner = OpenAICaptioner(args.openai_url, args.openai_model, concurrency=args.openai_concurrency)
    try:
        captioner.caption(requests[:1])  # warm-up: connection, server-side compilation
        result = timed(lambda: tally(captioner.caption(requests)))
    finally:
        captioner.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--model", default="", help="local model directory (default: the tiny test VLM)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--clips", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--footage", type=Path, default=Path("/tmp/footage"))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--openai-url", default="", help="e.g. http://localhost:8000/v1")
    parser.add_argument("--openai-model", default="")
    parser.add_argument("--openai-concurrency", type=int, default=8)
    args = parser.parse_args()
    if bool(args.openai_url) != bool(args.openai_model):
        sys.exit("--openai-url and --openai-model go together")

    import torch

    from resources.captioners.transformers import TransformersCaptioner

    # One thread: other work shares these cores, and CPU seconds per caption stay comparable.
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    model_path = args.model
    if not model_path:
        from tests.tiny_vlm import build_tiny_vlm

        model_path = str(build_tiny_vlm(STATE / "tiny_vlm"))
    requests = build_requests(args.footage, args.clips, args.max_new_tokens, args.seed)
    captioner = TransformersCaptioner(model_path, device=args.device, dtype=args.dtype,
                                      batch_size=args.batch_size, max_new_tokens=args.max_new_tokens)
    processor, model = captioner._processor, captioner._model  # the same objects: only the loop differs
    stop_ids = captioner._stop_ids

    def plain() -> tuple[int, int, int]:
        captions, tokens = plain_generate(processor, model, requests, args.batch_size, args.max_new_tokens,
                                          stop_ids)
        return captions, tokens, 0

    def wrapped() -> tuple[int, int, int]:
        return tally(captioner.caption(requests))

    captioner.caption(requests[: args.batch_size])  # warm-up (lazy kernels, allocator)
    rounds: dict[str, list[dict[str, float]]] = {"plain": [], "captioner": []}
    for _ in range(args.rounds):
        rounds["plain"].append(timed(plain))
        rounds["captioner"].append(timed(wrapped))
    best = {name: min(runs, key=lambda r: r["wall_s"]) for name, runs in rounds.items()}
    if args.openai_url:
        openai = run_openai(args, requests)
        if openai is not None:
            best["openai"] = openai
    report = {
        "model": model_path, "device": captioner.device, "dtype": captioner.dtype, "clips": args.clips,
        "keyframes_per_clip": KEYFRAMES, "batch_size": args.batch_size, "max_new_tokens": args.max_new_tokens,
        "rounds": args.rounds, "best": best, "all_rounds": rounds,
        "ratio_captions_per_s": best["captioner"]["captions_per_s"] / best["plain"]["captions_per_s"],
        "ratio_tokens_per_s": best["captioner"]["tokens_per_s"] / best["plain"]["tokens_per_s"],
        # CPU time is less disturbed than wall time by other work on shared cores
        "ratio_cpu_per_caption": min(r["cpu_s_per_caption"] for r in rounds["plain"])
        / min(r["cpu_s_per_caption"] for r in rounds["captioner"]),
    }
    print(f"\n{model_path} on {captioner.device} ({captioner.dtype}), {args.clips} clips x {KEYFRAMES} "
          f"keyframes, batch {args.batch_size}, max_new_tokens {args.max_new_tokens}, "
          f"best of {args.rounds}\n")
    print("| path | captions/s | tokens/s | wall s/caption | CPU s/caption | tokens | errors |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, r in best.items():
        print(f"| {name} | {r['captions_per_s']:.2f} | {r['tokens_per_s']:.1f} "
              f"| {r['wall_s_per_caption']:.3f} | {r['cpu_s_per_caption']:.3f} "
              f"| {r['completion_tokens']} | {r['errors']} |")
    print(f"\ncaptioner / plain: {report['ratio_captions_per_s']:.3f} (captions/s), "
          f"{report['ratio_tokens_per_s']:.3f} (tokens/s), "
          f"{report['ratio_cpu_per_caption']:.3f} (plain CPU s per caption / captioner's)")
    captioner.close()
    STATE.mkdir(parents=True, exist_ok=True)
    (STATE / "captioning.json").write_text(json.dumps(report, indent=2))
    print(f"wrote {STATE / 'captioning.json'}")


if __name__ == "__main__":
    main()
