"""Caption through any OpenAI-compatible chat-completions endpoint (vLLM, SGLang, hosted).

Each request becomes one POST to `{base_url}/chat/completions` (`base_url` ends in `/v1`, as
in the OpenAI and vLLM docs): the system message when given, then one user message whose
content is the keyframes as inline `data:image/jpeg;base64,...` `image_url` parts in time
order followed by the prompt as a text part.

Retry semantics are ours, not an SDK's: a timeout, a connection error, an HTTP 5xx or a 200
whose body is not a chat completion is retried with exponential backoff and jitter; HTTP 429
is retried too, and a 429 or 5xx that sends `Retry-After` waits that long instead (capped at
`max_backoff_s`); any other 4xx fails at once. A request
that still fails comes back with `error` set; `caption()` itself never raises for one clip.

The transport is urllib3 (present through boto3/botocore, requests and lakefs-sdk), with its
own retries switched off so every attempt is counted here.
"""

from __future__ import annotations

import base64
import email.utils
import json
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import cv2
import numpy as np
import urllib3
from urllib3.exceptions import HTTPError, NewConnectionError, ProtocolError
from urllib3.exceptions import TimeoutError as Urllib3Timeout

from resources.captioners.base import CaptionRequest, CaptionResult

_BODY_SNIPPET = 300  # characters of an error body kept in `error`; enough for a server's message


@dataclass(frozen=True)
class _Reply:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str | None


@dataclass(frozen=True)
class _Failure:
    reason: str
    retryable: bool
    retry_after_s: float | None = None  # the server's own wait (HTTP 429 Retry-After)


class OpenAICaptioner:
    """A `Captioner` over HTTP; thread-safe, one connection pool and one thread pool per instance.

    `concurrency` bounds the requests in flight at once (across all `caption()` calls on this
    instance); `max_retries` is the number of retries after the first attempt, so a request
    makes at most `max_retries + 1` attempts, reported in `CaptionResult.attempts`.
    `timeout_s` bounds connecting and each read of the response; non-streaming servers send
    the whole reply at once, so it bounds the generation time too.
    """

    name = "openai"

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str = "",
        concurrency: int = 8,
        timeout_s: float = 60.0,
        max_retries: int = 3,
        backoff_s: float = 1.0,
        max_backoff_s: float = 30.0,
        jpeg_quality: int = 90,
        temperature: float = 0.0,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"OpenAICaptioner: base_url {base_url!r} must start with http:// or https://")
        if concurrency < 1:
            raise ValueError(f"OpenAICaptioner: concurrency must be >= 1, got {concurrency}")
        if max_retries < 0:
            raise ValueError(f"OpenAICaptioner: max_retries must be >= 0, got {max_retries}")
        if timeout_s <= 0 or backoff_s < 0 or max_backoff_s < 0:
            raise ValueError("OpenAICaptioner: timeout_s must be > 0, backoff_s and max_backoff_s >= 0")
        if not 1 <= jpeg_quality <= 100:
            raise ValueError(f"OpenAICaptioner: jpeg_quality must be in 1..100, got {jpeg_quality}")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.jpeg_quality = jpeg_quality
        self.temperature = temperature
        self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._http = urllib3.PoolManager(
            num_pools=4,
            maxsize=concurrency,
            retries=False,
            timeout=urllib3.Timeout(connect=timeout_s, read=timeout_s),
        )
        self._workers = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="openai-captioner")
        self._closed = threading.Event()
        self._random = random.Random()

    def caption(self, requests: list[CaptionRequest]) -> list[CaptionResult]:
        """One result per request, in request order; failures are results with `error` set."""
        if self._closed.is_set():
            raise RuntimeError("OpenAICaptioner: caption() called after close()")
        return list(self._workers.map(self._caption_one, requests))

    def served_models(self) -> list[str]:
        """The model ids the endpoint serves (GET /models), to check `model` before a run.

        Raises RuntimeError naming the URL when the endpoint cannot be reached or answers badly.
        """
        url = f"{self.base_url}/models"
        try:
            response = self._http.request("GET", url, headers=self._headers)
            payload = json.loads(response.data)
            if response.status != 200:
                raise RuntimeError(f"HTTP {response.status}: {_error_message(response.data)}")
            return [str(entry["id"]) for entry in payload["data"]]
        except (HTTPError, OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
            raise RuntimeError(f"OpenAICaptioner: GET {url} failed: {exc}") from exc

    def close(self) -> None:
        """Stop waiting in backoffs, finish requests in flight, and drop pooled connections."""
        self._closed.set()
        self._workers.shutdown(wait=True, cancel_futures=True)
        self._http.clear()

    def __enter__(self) -> OpenAICaptioner:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _caption_one(self, request: CaptionRequest) -> CaptionResult:
        started = time.monotonic()
        result = CaptionResult(clip_id=request.clip_id, attempts=0)
        try:
            body = json.dumps(self._body(request)).encode()
        except ValueError as exc:
            result.error = f"bad input: {exc}"
            result.seconds = time.monotonic() - started
            return result
        for attempt in range(1, self.max_retries + 2):
            result.attempts = attempt
            outcome = self._post(body)
            if isinstance(outcome, _Reply):
                result.text = outcome.text
                result.prompt_tokens = outcome.prompt_tokens
                result.completion_tokens = outcome.completion_tokens
                result.extra["finish_reason"] = outcome.finish_reason
                result.error = None
                break
            result.error = outcome.reason
            if not outcome.retryable or attempt > self.max_retries:
                break
            # Event.wait instead of sleep so close() cuts a long backoff short.
            if self._closed.wait(self._delay(attempt, outcome.retry_after_s)):
                result.error = f"{outcome.reason}; captioner closed before the retry"
                break
        if result.error is not None and result.attempts > 1:
            result.error = f"{result.error} (after {result.attempts} attempts)"
        result.seconds = time.monotonic() - started
        return result

    def _body(self, request: CaptionRequest) -> dict[str, object]:
        content: list[dict[str, object]] = [
            {"type": "image_url", "image_url": {"url": self._data_url(image, request.clip_id, index)}}
            for index, image in enumerate(request.images)
        ]
        content.append({"type": "text", "text": request.prompt})
        messages: list[dict[str, object]] = []
        if request.system:
            messages.append({"role": "system", "content": request.system})
        messages.append({"role": "user", "content": content})
        return {
            "model": self.model,
            "messages": messages,
            "max_tokens": request.max_new_tokens,
            "temperature": self.temperature,
            "stream": False,
        }

    def _data_url(self, image: np.ndarray, clip_id: str, index: int) -> str:
        if not isinstance(image, np.ndarray):
            raise ValueError(f"clip {clip_id!r} image {index} is a {type(image).__name__}, not a numpy array")
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(
                f"clip {clip_id!r} image {index} must be RGB uint8 HxWx3, got {image.dtype} {image.shape}"
            )
        ok, encoded = cv2.imencode(
            ".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality]
        )
        if not ok:
            raise ValueError(f"clip {clip_id!r} image {index} {image.shape} could not be JPEG-encoded")
        return "data:image/jpeg;base64," + base64.b64encode(encoded.tobytes()).decode("ascii")

    def _post(self, body: bytes) -> _Reply | _Failure:
        url = f"{self.base_url}/chat/completions"
        try:
            response = self._http.request("POST", url, body=body, headers=self._headers)
        except NewConnectionError as exc:  # a subclass of urllib3's TimeoutError: test it first
            return _Failure(f"connection to {url} failed: {exc}", retryable=True)
        except Urllib3Timeout:
            return _Failure(f"timeout after {self.timeout_s:g} s", retryable=True)
        except (ProtocolError, HTTPError, OSError) as exc:
            return _Failure(f"connection error: {exc}", retryable=True)
        if response.status != 200:
            # 503 may carry Retry-After too; any other 4xx is the request's own fault.
            return _Failure(
                f"HTTP {response.status}: {_error_message(response.data)}",
                retryable=response.status == 429 or response.status >= 500,
                retry_after_s=_retry_after_s(response.headers.get("Retry-After")),
            )
        try:
            return _parse_completion(response.data)
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            # A proxy or an overloaded server can send a truncated or HTML 200; worth another try.
            return _Failure(f"malformed response: {exc}", retryable=True)

    def _delay(self, attempt: int, retry_after_s: float | None) -> float:
        if retry_after_s is not None:
            return min(retry_after_s, self.max_backoff_s)
        ceiling = min(self.backoff_s * 2 ** (attempt - 1), self.max_backoff_s)
        # Jitter in [ceiling/2, ceiling] spreads retries of a failed batch apart, yet keeps growth.
        return ceiling * (0.5 + 0.5 * self._random.random())


def _parse_completion(data: bytes) -> _Reply:
    """Raises ValueError (not JSON), KeyError/IndexError/TypeError (not a chat completion)."""
    try:
        payload = json.loads(data)
    except ValueError as exc:
        raise ValueError(f"not JSON ({_snippet(data)!r})") from exc
    if not isinstance(payload, dict) or not payload.get("choices"):
        raise KeyError(f"no choices in {_snippet(data)!r}")
    choice = payload["choices"][0]
    content = choice["message"]["content"]
    if isinstance(content, list):  # some servers answer with content parts
        content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
    if not isinstance(content, str):
        raise TypeError(f"message content is {type(content).__name__}, not text")
    usage = payload.get("usage") or {}
    return _Reply(
        text=content,
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
        finish_reason=choice.get("finish_reason"),
    )


def _retry_after_s(value: str | None) -> float | None:
    """Retry-After as seconds: delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def _error_message(data: bytes) -> str:
    """The server's own message from an OpenAI-style error body, else the start of the body."""
    try:
        payload = json.loads(data)
        message = payload["error"]["message"] if isinstance(payload.get("error"), dict) else payload["error"]
        return str(message)[:_BODY_SNIPPET]
    except (ValueError, KeyError, TypeError, AttributeError):
        return _snippet(data)


def _snippet(data: bytes) -> str:
    return data[:_BODY_SNIPPET].decode("utf-8", errors="replace")
