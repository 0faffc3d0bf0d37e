"""OpenAICaptioner against a real local OpenAI-compatible HTTP server (tests/openai_server.py)."""

from __future__ import annotations

import email.utils
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from resources.captioners.base import CaptionRequest
from resources.captioners.openai import OpenAICaptioner, _retry_after_s
from tests.openai_server import LocalOpenAIServer

# Short enough that the whole file runs in a few seconds; the client logic is the same at 60 s.
FAST = {"timeout_s": 0.5, "backoff_s": 0.01, "max_backoff_s": 0.05}


def _solid(rgb: tuple[int, int, int], height: int = 384, width: int = 512) -> np.ndarray:
    return np.broadcast_to(np.array(rgb, np.uint8), (height, width, 3)).copy()


def _request(clip_id: str, colours: list[tuple[int, int, int]], **kwargs: object) -> CaptionRequest:
    return CaptionRequest(clip_id=clip_id, images=[_solid(c) for c in colours],
                          prompt=f"describe {clip_id}", **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def server() -> Iterator[LocalOpenAIServer]:
    with LocalOpenAIServer(hang_s=3.0) as running:
        yield running


def _closed_port_url() -> str:
    """A loopback URL nothing listens on: the OS hands out a free port, which we release."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def _captioner(server: LocalOpenAIServer, **overrides: object) -> OpenAICaptioner:
    kwargs: dict[str, object] = {"concurrency": 4, **FAST, **overrides}
    return OpenAICaptioner(server.base_url, server.model, **kwargs)  # type: ignore[arg-type]


def test_batch_round_trip_images_prompt_order_and_tokens(server: LocalOpenAIServer) -> None:
    colours = {
        "a": [(250, 10, 10), (10, 250, 10), (10, 10, 250), (128, 128, 128)],
        "b": [(0, 0, 0), (255, 255, 255)],
        "c": [(200, 100, 50)],
    }
    requests = [
        _request(cid, cs, system="you caption videos", max_new_tokens=77) for cid, cs in colours.items()
    ]
    requests.append(CaptionRequest("d", [_solid((5, 200, 5), 384, 216)], "portrait clip"))
    with _captioner(server, api_key="sk-test", temperature=0.2) as captioner:
        results = captioner.caption(requests)

    assert [r.clip_id for r in results] == ["a", "b", "c", "d"]
    for request, result in zip(requests, results, strict=True):
        assert result.error is None and result.attempts == 1
        reply = json.loads(result.text)
        assert reply["prompt"] == request.prompt
        assert [im["shape"] for im in reply["images"]] == [list(im.shape) for im in request.images]
        # JPEG is lossy; a flat colour survives within a few levels.
        for sent, seen in zip(request.images, reply["images"], strict=True):
            assert np.abs(np.array(seen["mean_rgb"]) - sent[0, 0]).max() <= 4
        assert result.prompt_tokens == 10 * len(request.images) + len(request.prompt.split())
        assert result.completion_tokens == len(result.text.split()) > 0
        assert result.extra["finish_reason"] in ("stop", "length")
        assert result.seconds > 0

    received = {r.prompt: r for r in server.requests}
    assert len(server.requests) == 4
    assert received["describe a"].system == "you caption videos"
    assert received["describe a"].max_tokens == 77
    assert received["describe a"].temperature == 0.2
    assert received["portrait clip"].system == "" and received["portrait clip"].max_tokens == 256
    assert {r.authorization for r in server.requests} == {"Bearer sk-test"}
    assert {r.model for r in server.requests} == {"tiny-vlm"}


def test_no_api_key_sends_no_authorization(server: LocalOpenAIServer) -> None:
    with _captioner(server) as captioner:
        [result] = captioner.caption([_request("a", [(1, 2, 3)])])
    assert result.error is None
    assert server.requests[0].authorization is None


def test_served_models_lists_the_model(server: LocalOpenAIServer) -> None:
    with _captioner(server) as captioner:
        assert captioner.served_models() == ["tiny-vlm"]
    url = _closed_port_url()
    with OpenAICaptioner(url, "m", timeout_s=0.5) as nowhere, pytest.raises(
        RuntimeError, match=f"GET {url}/models failed"
    ):
        nowhere.served_models()


def test_timeout_then_success_is_retried(server: LocalOpenAIServer) -> None:
    server.inject("hang")
    with _captioner(server, timeout_s=0.3) as captioner:
        [result] = captioner.caption([_request("a", [(9, 9, 9)])])
    assert result.error is None and result.attempts == 2
    assert json.loads(result.text)["prompt"] == "describe a"
    assert [r.fault for r in server.requests] == ["hang", None]


def test_server_error_then_success_is_retried(server: LocalOpenAIServer) -> None:
    server.inject("500")
    with _captioner(server) as captioner:
        [result] = captioner.caption([_request("a", [(9, 9, 9)])])
    assert result.error is None and result.attempts == 2
    assert [r.fault for r in server.requests] == ["500", None]


def test_rate_limit_waits_for_retry_after(server: LocalOpenAIServer) -> None:
    server.inject("429", retry_after=1)
    # backoff_s alone would retry within 10 ms; only Retry-After explains a 1 s gap.
    with _captioner(server, backoff_s=0.01, max_backoff_s=5.0) as captioner:
        [result] = captioner.caption([_request("a", [(9, 9, 9)])])
    assert result.error is None and result.attempts == 2
    first, second = server.requests
    assert first.fault == "429" and second.fault is None
    assert 0.95 <= second.arrived - first.arrived < 2.0


def test_retry_after_is_capped_by_max_backoff(server: LocalOpenAIServer) -> None:
    server.inject("429", retry_after=30)
    started = time.monotonic()
    with _captioner(server, max_backoff_s=0.1) as captioner:
        [result] = captioner.caption([_request("a", [(9, 9, 9)])])
    assert result.error is None and result.attempts == 2
    assert time.monotonic() - started < 2.0


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert _retry_after_s("2") == 2.0
    assert _retry_after_s("0.5") == 0.5
    in_ten = email.utils.formatdate(time.time() + 10, usegmt=True)
    assert 8.0 <= (_retry_after_s(in_ten) or 0.0) <= 10.5
    assert _retry_after_s(email.utils.formatdate(time.time() - 60, usegmt=True)) == 0.0
    assert _retry_after_s(None) is None and _retry_after_s("soon") is None


def test_backoff_grows_exponentially_up_to_the_cap(server: LocalOpenAIServer) -> None:
    server.inject("500", times=3)
    with _captioner(server, backoff_s=0.1, max_backoff_s=10.0) as captioner:
        [result] = captioner.caption([_request("a", [(9, 9, 9)])])
    assert result.error is None and result.attempts == 4
    arrived = [r.arrived for r in server.requests]
    gaps = np.diff(arrived)
    # Jittered waits lie in [d/2, d] for d = 0.1, 0.2, 0.4 s (plus request time).
    assert 0.05 <= gaps[0] < 0.2 and 0.1 <= gaps[1] < 0.35 and 0.2 <= gaps[2] < 0.6


def test_persistent_server_error_fails_only_that_clip(server: LocalOpenAIServer) -> None:
    server.inject("500", times=100, match="describe b")
    requests = [_request(cid, [(9, 9, 9)]) for cid in "abc"]
    with _captioner(server, max_retries=2) as captioner:
        results = captioner.caption(requests)
    a, b, c = results
    assert a.error is None and c.error is None and a.attempts == c.attempts == 1
    assert b.text == "" and b.attempts == 3
    assert b.error is not None and "HTTP 500" in b.error and "injected internal error" in b.error
    assert "3 attempts" in b.error


def test_persistent_timeout_reports_timeout(server: LocalOpenAIServer) -> None:
    server.inject("hang", times=100)
    with _captioner(server, timeout_s=0.2, max_retries=1) as captioner:
        [result] = captioner.caption([_request("a", [(9, 9, 9)])])
    assert result.attempts == 2 and result.error is not None and "timeout after 0.2 s" in result.error


@pytest.mark.parametrize("kind", ["not_json", "no_choices"])
def test_malformed_response_retried_then_error(server: LocalOpenAIServer, kind: str) -> None:
    server.inject(kind, times=1, match="describe a")
    server.inject(kind, times=100, match="describe b")
    with _captioner(server, max_retries=2) as captioner:
        transient, persistent = captioner.caption([_request("a", [(9, 9, 9)]), _request("b", [(9, 9, 9)])])
    assert transient.error is None and transient.attempts == 2
    assert json.loads(transient.text)["prompt"] == "describe a"
    assert persistent.attempts == 3 and persistent.text == ""
    assert persistent.error is not None and persistent.error.startswith("malformed response")


def test_client_error_is_not_retried(server: LocalOpenAIServer) -> None:
    with OpenAICaptioner(server.base_url, "no-such-model", **FAST) as captioner:  # type: ignore[arg-type]
        [result] = captioner.caption([_request("a", [(9, 9, 9)])])
    assert result.attempts == 1 and len(server.requests) == 1
    assert result.error == "HTTP 404: The model `no-such-model` does not exist."


def test_unreachable_server_is_an_error_not_an_exception() -> None:
    with OpenAICaptioner(_closed_port_url(), "m", max_retries=2, **FAST) as captioner:  # type: ignore[arg-type]
        [result] = captioner.caption([_request("a", [(9, 9, 9)])])
    assert result.attempts == 3 and result.error is not None and "connection to" in result.error


def test_bad_image_fails_that_clip_only(server: LocalOpenAIServer) -> None:
    bad = CaptionRequest("bad", [np.zeros((8, 8), np.float32)], "describe bad")
    with _captioner(server) as captioner:
        good, failed = captioner.caption([_request("good", [(9, 9, 9)]), bad])
    assert good.error is None
    assert failed.attempts == 0 and failed.error is not None and "must be RGB uint8 HxWx3" in failed.error
    assert [r.prompt for r in server.requests] == ["describe good"]


@pytest.mark.parametrize("concurrency", [1, 3])
def test_concurrency_is_bounded(concurrency: int) -> None:
    def slow(images: list[np.ndarray], prompt: str, max_tokens: int) -> tuple[str, int, int]:
        time.sleep(0.1)
        return prompt, 1, 1

    with LocalOpenAIServer(generate=slow) as server, _captioner(
        server, concurrency=concurrency, timeout_s=5.0
    ) as captioner:
        # Two callers at once share the one bound.
        results: list[list[str]] = []
        callers = [
            threading.Thread(target=lambda k=k: results.append(
                [r.text for r in captioner.caption([_request(f"{k}{i}", [(9, 9, 9)]) for i in range(5)])]
            ))
            for k in "xy"
        ]
        for caller in callers:
            caller.start()
        for caller in callers:
            caller.join()
    assert sorted(results) == [[f"describe x{i}" for i in range(5)], [f"describe y{i}" for i in range(5)]]
    assert len(server.requests) == 10
    assert server.max_active <= concurrency
    assert server.max_active >= min(concurrency, 2)  # it does run requests in parallel


def test_tiny_vlm_served_over_http_matches_local_captioner(tmp_path: Path) -> None:
    """The same tiny model answers through the HTTP path as through the in-process backend."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    tiny_vlm = pytest.importorskip("tests.tiny_vlm")
    backend = pytest.importorskip("resources.captioners.transformers")

    model_path = tiny_vlm.build_tiny_vlm(tmp_path / "tiny-vlm")
    local = backend.TransformersCaptioner(
        model_path=str(model_path), device="cpu", dtype="float32", batch_size=1, max_new_tokens=8
    )

    one_at_a_time = threading.Lock()  # a real server serialises through its batcher

    def generate(images: list[np.ndarray], prompt: str, max_tokens: int) -> tuple[str, int, int]:
        with one_at_a_time:
            [served] = local.caption([CaptionRequest("served", images, prompt, max_new_tokens=max_tokens)])
        assert served.error is None, served.error
        return served.text, served.prompt_tokens, served.completion_tokens

    requests = [_request("a", [(250, 10, 10), (10, 10, 250)], max_new_tokens=8),
                _request("b", [(90, 90, 90)], max_new_tokens=8)]
    try:
        with LocalOpenAIServer(generate=generate, model="tiny-vlm") as server, _captioner(
            server, timeout_s=120.0
        ) as captioner:
            over_http = captioner.caption(requests)
            # What the server's model saw is the JPEG round trip; caption those same pixels locally.
            direct = local.caption([
                CaptionRequest(r.clip_id, server_request.images, r.prompt, max_new_tokens=8)
                for r, server_request in zip(requests, sorted(server.requests, key=lambda s: s.prompt),
                                             strict=True)
            ])
    finally:
        local.close()
    for remote, here in zip(over_http, direct, strict=True):
        assert remote.error is None, remote.error
        assert remote.text == here.text
        assert remote.prompt_tokens == here.prompt_tokens > 0
        assert remote.completion_tokens == here.completion_tokens > 0
