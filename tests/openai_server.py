"""A real OpenAI-compatible HTTP server for tests, on 127.0.0.1 in a background thread.

It serves POST /v1/chat/completions and GET /v1/models with the OpenAI request and response
shapes, decodes the inline `data:image/...;base64` images back to RGB arrays and answers with a
pluggable `generate(images, prompt, max_tokens) -> (text, prompt_tokens, completion_tokens)`.
Every chat request is recorded (faulted ones too), with the most requests seen in flight at
once. Faults are injected per test and hit the next matching requests in arrival order:

- "hang": wait `hang_s` (longer than the client's timeout) before answering normally
- "500": HTTP 500 with an OpenAI error body
- "429": HTTP 429 with `Retry-After: <retry_after>`
- "not_json": HTTP 200 whose body is not JSON
- "no_choices": HTTP 200, valid JSON without `choices`
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np

Generate = Callable[[list[np.ndarray], str, int], tuple[str, int, int]]
FAULT_KINDS = ("hang", "500", "429", "not_json", "no_choices")


def describe_images(images: list[np.ndarray], prompt: str, max_tokens: int) -> tuple[str, int, int]:
    """The default model: a JSON reply naming each image's size and mean colour, and the prompt."""
    reply = json.dumps({
        "images": [{"shape": list(im.shape), "mean_rgb": im.reshape(-1, 3).mean(0).round(1).tolist()}
                   for im in images],
        "prompt": prompt,
    })
    return reply, 10 * len(images) + len(prompt.split()), len(reply.split())


@dataclass
class ReceivedRequest:
    model: str
    images: list[np.ndarray]  # decoded RGB uint8, in the order the request listed them
    prompt: str  # the text parts of the user message, joined
    system: str
    max_tokens: int
    temperature: float | None
    authorization: str | None
    arrived: float  # time.monotonic() when the request was read
    fault: str | None = None  # the fault this request was answered with


@dataclass
class _Fault:
    kind: str
    remaining: int
    match: str | None
    retry_after: float


class LocalOpenAIServer:
    """Start with `with LocalOpenAIServer(...) as server:`; point clients at `server.base_url`.

    `requests` and `max_active` may be read while it runs; they only grow.
    """

    def __init__(self, generate: Generate = describe_images, model: str = "tiny-vlm", hang_s: float = 5.0):
        self.generate = generate
        self.model = model
        self.hang_s = hang_s
        self.requests: list[ReceivedRequest] = []
        self.max_active = 0
        self._active = 0
        self._faults: list[_Fault] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("LocalOpenAIServer is not running")
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def inject(self, kind: str, times: int = 1, match: str | None = None, retry_after: float = 1.0) -> None:
        """Answer the next `times` chat requests (whose prompt contains `match`, if given) with a fault."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"fault kind {kind!r} is not one of {FAULT_KINDS}")
        with self._lock:
            self._faults.append(_Fault(kind, times, match, retry_after))

    def start(self) -> None:
        # Port 0: the OS picks a free port, so parallel test sessions never collide.
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        # A short poll interval so stop() (which waits for the next poll) returns at once.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, name="openai-srv", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()  # wakes "hang" handlers so nothing lingers after the test
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> LocalOpenAIServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _take_fault(self, prompt: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.remaining > 0 and (fault.match is None or fault.match in prompt):
                    fault.remaining -= 1
                    return fault
        return None

    def _enter(self) -> None:
        with self._lock:
            self._active += 1
            self.max_active = max(self.max_active, self._active)

    def _leave(self) -> None:
        with self._lock:
            self._active -= 1


def _decode_data_url(url: str) -> np.ndarray:
    header, _, payload = url.partition(",")
    if not (header.startswith("data:image/") and header.endswith(";base64")):
        raise ValueError(f"expected a data:image/...;base64 URL, got {url[:40]!r}")
    bgr = cv2.imdecode(np.frombuffer(base64.b64decode(payload), np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError("image data could not be decoded")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _parse_chat(body: dict, authorization: str | None) -> ReceivedRequest:
    images: list[np.ndarray] = []
    texts: list[str] = []
    system = ""
    for message in body["messages"]:
        content = message["content"]
        if message["role"] == "system":
            system = content if isinstance(content, str) else "".join(p.get("text", "") for p in content)
            continue
        for part in [{"type": "text", "text": content}] if isinstance(content, str) else content:
            if part["type"] == "image_url":
                images.append(_decode_data_url(part["image_url"]["url"]))
            elif part["type"] == "text":
                texts.append(part["text"])
    return ReceivedRequest(
        model=body["model"],
        images=images,
        prompt="\n".join(texts),
        system=system,
        max_tokens=int(body.get("max_tokens") or body.get("max_completion_tokens") or 16),
        temperature=body.get("temperature"),
        authorization=authorization,
        arrived=time.monotonic(),
    )


def _handler_for(server: LocalOpenAIServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as a pooled client expects

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
            pass

        def do_GET(self) -> None:
            if self.path.rstrip("/") != "/v1/models":
                self._send_json(404, _error_body(f"no route GET {self.path}", "NotFoundError"))
                return
            model = {"id": server.model, "object": "model", "created": 0, "owned_by": "vcurate-tests"}
            self._send_json(200, {"object": "list", "data": [model]})

        def do_POST(self) -> None:
            server._enter()
            try:
                self._chat_completion()
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (its timeout) before the answer was written
            finally:
                server._leave()

        def _chat_completion(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._send_json(404, _error_body(f"no route POST {self.path}", "NotFoundError"))
                return
            try:
                received = _parse_chat(json.loads(raw), self.headers.get("Authorization"))
            except (ValueError, KeyError, TypeError) as exc:
                self._send_json(400, _error_body(f"bad request: {exc}", "BadRequestError"))
                return
            with server._lock:
                server.requests.append(received)
            if received.model != server.model:
                # vLLM's wording, so a client's error message reads as it would in production.
                message = f"The model `{received.model}` does not exist."
                self._send_json(404, _error_body(message, "NotFoundError"))
                return
            fault = server._take_fault(received.prompt)
            received.fault = fault.kind if fault else None
            if fault is not None and fault.kind != "hang":
                self._send_fault(fault)
                return
            if fault is not None:
                server._stopping.wait(server.hang_s)
            text, prompt_tokens, completion_tokens = server.generate(
                received.images, received.prompt, received.max_tokens
            )
            self._send_json(200, {
                "id": f"chatcmpl-{uuid.uuid4().hex}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": server.model,
                "choices": [{
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "length" if completion_tokens >= received.max_tokens else "stop",
                }],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            })

        def _send_fault(self, fault: _Fault) -> None:
            if fault.kind == "500":
                self._send_json(500, _error_body("injected internal error", "InternalServerError"))
            elif fault.kind == "429":
                self._send_json(
                    429, _error_body("injected rate limit", "RateLimitError"),
                    headers={"Retry-After": f"{fault.retry_after:g}"},
                )
            elif fault.kind == "not_json":
                self._send_raw(200, b"<html>upstream proxy error</html>", "text/html")
            elif fault.kind == "no_choices":
                self._send_json(200, {"id": "chatcmpl-x", "object": "chat.completion", "model": server.model})

        def _send_json(self, status: int, payload: object, headers: dict[str, str] | None = None) -> None:
            self._send_raw(status, json.dumps(payload).encode(), "application/json", headers)

        def _send_raw(
            self, status: int, data: bytes, content_type: str, headers: dict[str, str] | None = None
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

    return Handler


def _error_body(message: str, kind: str) -> dict[str, object]:
    return {"error": {"message": message, "type": kind, "code": None}}
