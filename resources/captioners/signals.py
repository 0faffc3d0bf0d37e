"""The `signals` captioner: no model, only what the measured signals say about a clip.

It fills the structured fields it can derive (camera motion, motion level, lighting from
exposure, duration, text on screen, aspect) and leaves content fields generic. It is the
offline default and a floor for every other backend: cheap, deterministic, never wrong about
what was measured.
"""

from __future__ import annotations

import json
import time
from typing import Any

from media.captions import motion_level
from resources.captioners.base import CaptionRequest, CaptionResult

_CAMERA = {"static": "a static camera", "pan_left": "the camera panning left",
           "pan_right": "the camera panning right", "tilt_up": "the camera tilting up",
           "tilt_down": "the camera tilting down", "zoom_in": "the camera zooming in",
           "zoom_out": "the camera zooming out", "handheld": "a handheld, slightly shaky camera",
           "complex": "complex camera and subject motion"}


def lighting(exposure_label: str, brightness: float) -> str:
    if exposure_label == "under" or brightness < 60:
        return "dark, low-key lighting"
    if exposure_label == "over" or brightness > 190:
        return "bright, high-key lighting"
    return "balanced lighting"


def fields_from_signals(s: dict[str, Any]) -> dict[str, Any]:
    camera = s.get("camera_motion") or "static"
    level = motion_level(float(s.get("motion_mean") or 0.0))
    width, height = int(s.get("width") or 0), int(s.get("height") or 0)
    shape = "vertical" if height > width else "square" if height == width else "widescreen"
    duration = float(s.get("duration_s") or 0.0)
    has_text = bool(s.get("subtitle_band")) or float(s.get("text_ratio_max") or 0.0) > 0.002
    light = lighting(str(s.get("exposure_label") or "normal"), float(s.get("brightness") or 128))
    text_note = " On-screen text is visible." if has_text else ""
    short = f"A {duration:.0f}-second {shape} clip with {_CAMERA.get(camera, camera)} and {level} motion."
    dense = (f"A {duration:.1f}-second {shape} video clip ({width}x{height}) filmed with "
             f"{_CAMERA.get(camera, camera)}. The scene shows {level} motion, with {light}."
             f"{text_note} The picture quality is "
             f"{'high' if float(s.get('technical_quality') or 0) >= 0.6 else 'moderate'}.")
    return {"short": short, "dense": dense, "background": "", "style": "", "shot_size": "",
            "lighting": light, "atmosphere": "", "camera_motion": camera, "motion_level": level,
            "events": []}


class SignalsCaptioner:
    name = "signals"
    model = "signals-v1"

    def caption(self, requests: list[CaptionRequest]) -> list[CaptionResult]:
        results = []
        for request in requests:
            start = time.perf_counter()
            try:
                text = json.dumps(fields_from_signals(request.signals))
                results.append(CaptionResult(request.clip_id, text, seconds=time.perf_counter() - start))
            except (TypeError, ValueError) as exc:
                results.append(CaptionResult(request.clip_id, error=f"signals caption failed: {exc}"))
        return results

    def close(self) -> None:
        pass
