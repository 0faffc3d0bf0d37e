"""Structured captions: the prompt, tolerant parsing, caption variants, and caption QC.

A caption is a JSON object with the fields of `FIELDS` (Ch. 48: short, dense, background,
style, shot size, lighting, atmosphere, camera motion, motion level; plus optional
timestamped events). Replies are parsed tolerantly (code fences, trailing prose, trailing
commas, single quotes, a truncated tail), then checked: empty, too short or long, repetition
loops, not JSON, wrong language, or contradicting the measured signals.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from typing import Any

PROMPT_VERSION = "caption-v1"
FIELDS = ("short", "dense", "background", "style", "shot_size", "lighting", "atmosphere",
          "camera_motion", "motion_level")
CAMERA_LABELS = ("static", "pan_left", "pan_right", "tilt_up", "tilt_down", "zoom_in", "zoom_out",
                 "handheld", "complex")
MOTION_LEVELS = ("still", "low", "medium", "high")
SHOT_SIZES = ("extreme close-up", "close-up", "medium", "wide", "extreme wide")

SYSTEM = "You describe video clips for training a text-to-video model. Answer with JSON only."


def caption_prompt(duration_s: float, frame_times: list[float]) -> str:
    """The user message sent with a clip's keyframes (in time order)."""
    times = ", ".join(f"{t:.1f} s" for t in frame_times)
    return (
        f"These {len(frame_times)} frames come from one {duration_s:.1f}-second video clip, in time "
        f"order (at {times}). Describe the clip as one JSON object with these keys:\n"
        '"short": one sentence (at most 20 words);\n'
        '"dense": a detailed paragraph (60-100 words): subjects, actions, setting, changes over time;\n'
        '"background": the setting behind the subjects;\n'
        '"style": e.g. live action, animation, screen recording, documentary;\n'
        f'"shot_size": one of {", ".join(SHOT_SIZES)};\n'
        '"lighting": e.g. daylight, low-key, studio, night;\n'
        '"atmosphere": the mood in a few words;\n'
        f'"camera_motion": one of {", ".join(CAMERA_LABELS)};\n'
        f'"motion_level": one of {", ".join(MOTION_LEVELS)};\n'
        '"events": optional list of {"start_s": number, "end_s": number, "text": string}.\n'
        "Do not mention the frames themselves. Output only the JSON object."
    )


@dataclass
class ParsedCaption:
    fields: dict[str, str]  # every key of FIELDS (empty string when missing)
    events: list[dict[str, Any]]
    status: str  # ok | repaired | failed
    problems: list[str] = field(default_factory=list)


def parse_caption(text: str) -> ParsedCaption:
    """Parse a model reply into caption fields, repairing what can be repaired."""
    body = _strip_fences(text or "")
    start = body.find("{")
    if start < 0:
        return ParsedCaption(dict.fromkeys(FIELDS, ""), [], "failed", ["no JSON object in the reply"])
    candidate = _balanced(body[start:])
    data, repaired = _load(candidate)
    tail = body[start:]
    while not isinstance(data, dict) and "," in tail:  # truncated: drop the unfinished member
        tail = tail[: tail.rfind(",")]
        data, _ = _load(_balanced(tail))
        repaired = True
    if not isinstance(data, dict):
        return ParsedCaption(dict.fromkeys(FIELDS, ""), [], "failed", ["reply is not valid JSON"])
    problems = [] if not repaired else ["JSON repaired"]
    fields = {}
    for key in FIELDS:
        value = data.get(key, "")
        if isinstance(value, list | dict):
            value = json.dumps(value)
        fields[key] = " ".join(str(value).split()) if value is not None else ""
        if not fields[key]:
            problems.append(f"missing field {key}")
    fields["camera_motion"] = normalise_camera(fields["camera_motion"]) or fields["camera_motion"]
    events = [e for e in data.get("events") or [] if isinstance(e, dict) and e.get("text")]
    return ParsedCaption(fields, events, "repaired" if repaired else "ok", problems)


def _strip_fences(text: str) -> str:
    return re.sub(r"```(?:json|JSON)?", "", text).strip()


def _balanced(text: str) -> str:
    """The first balanced {...} in text; a truncated tail gets its brackets closed."""
    depth, in_string, escaped, stack = 0, False, False, []
    for i, char in enumerate(text):
        if in_string:
            escaped = char == "\\" and not escaped
            if char == '"' and not escaped:
                in_string = False
            continue
        if char == '"':
            in_string = True
        elif char in "{[":
            stack.append("}" if char == "{" else "]")
            depth += 1
        elif char in "}]":
            if stack:
                stack.pop()
            depth -= 1
            if depth == 0:
                return text[: i + 1]
    closing = ('"' if in_string else "") + "".join(reversed(stack))
    return text + closing


def _load(text: str) -> tuple[Any, bool]:
    try:
        return json.loads(text), False
    except json.JSONDecodeError:
        pass
    fixed = re.sub(r",\s*([}\]])", r"\1", text)  # trailing commas
    try:
        return json.loads(fixed), True
    except json.JSONDecodeError:
        pass
    try:  # Python-style dicts: single quotes, True/None
        return ast.literal_eval(fixed), True
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None, True


_CAMERA_WORDS = (
    ("pan_left", r"pan(s|ning|ned)?\s+(to\s+the\s+)?left"),
    ("pan_right", r"pan(s|ning|ned)?\s+(to\s+the\s+)?right"),
    ("tilt_up", r"tilt(s|ing|ed)?\s+up"), ("tilt_down", r"tilt(s|ing|ed)?\s+down"),
    ("zoom_in", r"zoom(s|ing|ed)?\s+in"), ("zoom_out", r"zoom(s|ing|ed)?\s+out"),
    ("handheld", r"hand-?held|shak(y|ing|e)"), ("static", r"static|still|fixed|locked|stationary|tripod"),
    ("complex", r"complex|tracking|follow|orbit|dolly|crane"),
)


def normalise_camera(text: str) -> str | None:
    """A camera label from free text ('The camera slowly pans to the left' → pan_left)."""
    lowered = text.lower().strip().replace(" ", "_")
    if lowered in CAMERA_LABELS:
        return lowered
    for label, pattern in _CAMERA_WORDS:
        if re.search(pattern, text.lower()):
            return label
    return None


@dataclass(frozen=True)
class QcParams:
    min_dense_words: int = 12
    max_dense_words: int = 200
    max_repeated_trigram_share: float = 0.3  # share of 3-grams that repeat an earlier one
    max_same_word_run: int = 4  # "the the the the"
    min_english_share: float = 0.08  # share of words that are common English function words
    max_non_latin_share: float = 0.2
    contradiction_min_confidence: float = 0.6  # measured camera label this sure to contradict


@dataclass
class QcResult:
    status: str  # ok | needs_review | rejected
    reasons: list[str]
    contradictions: list[str]


_ENGLISH = frozenset((
    "the", "a", "an", "and", "or", "of", "in", "on", "at", "to", "with", "is", "are", "was",
    "were", "it", "its", "this", "that", "from", "by", "as", "for", "while", "into", "over",
    "under", "his", "her", "their", "they", "he", "she", "we", "you", "camera", "scene",
))


def check_caption(parsed: ParsedCaption, measured: dict[str, Any], params: QcParams) -> QcResult:
    """QC a parsed caption against text rules and the clip's measured signals."""
    rejected, review = [], []
    dense = parsed.fields["dense"] or parsed.fields["short"]
    words = re.findall(r"[^\W\d_]+(?:'[^\W\d_]+)?", dense.lower())
    if parsed.status == "failed":
        rejected.append("not JSON: " + "; ".join(parsed.problems))
    elif not dense:
        rejected.append("empty caption")
    else:
        if len(words) < params.min_dense_words:
            rejected.append(f"too short: {len(words)} words < qc.min_dense_words {params.min_dense_words}")
        if len(words) > params.max_dense_words:
            review.append(f"too long: {len(words)} words > qc.max_dense_words {params.max_dense_words}")
        share, run = repetition(words)
        if share > params.max_repeated_trigram_share or run > params.max_same_word_run:
            rejected.append(f"repetition loop: {share:.2f} repeated 3-grams, longest run {run}")
        letters = [c for c in dense if c.isalpha()]
        non_latin = sum(1 for c in letters if ord(c) > 0x24F) / max(1, len(letters))
        english = sum(1 for w in words if w in _ENGLISH) / max(1, len(words))
        if non_latin > params.max_non_latin_share or english < params.min_english_share:
            rejected.append(f"wrong language: {english:.2f} English function words, "
                            f"{non_latin:.2f} non-Latin letters")
    contradictions = contradictions_with_signals(parsed, measured, params)
    review.extend(contradictions)
    status = "rejected" if rejected else "needs_review" if review else "ok"
    return QcResult(status, rejected + review, contradictions)


def repetition(words: list[str]) -> tuple[float, int]:
    """(share of 3-grams seen before in the text, longest run of one repeated word)."""
    grams = [tuple(words[i : i + 3]) for i in range(len(words) - 2)]
    seen, repeated = set(), 0
    for gram in grams:
        repeated += gram in seen
        seen.add(gram)
    run = longest = 1 if words else 0
    for a, b in zip(words, words[1:], strict=False):
        run = run + 1 if a == b else 1
        longest = max(longest, run)
    return repeated / max(1, len(grams)), longest


_MOVES = {"pan_left", "pan_right", "tilt_up", "tilt_down", "zoom_in", "zoom_out"}


def contradictions_with_signals(parsed: ParsedCaption, measured: dict[str, Any],
                                params: QcParams) -> list[str]:
    """Where the text says what the measurements rule out (e.g. 'static' on a measured pan)."""
    found = []
    said = normalise_camera(parsed.fields["camera_motion"]) or normalise_camera(parsed.fields["dense"])
    label, confidence = measured.get("camera_motion"), measured.get("camera_confidence", 0.0)
    opposed = (said == "static" and label in _MOVES) or (said in _MOVES and label == "static") or (
        said in _MOVES and label in _MOVES and said != label)
    if said and label and confidence >= params.contradiction_min_confidence and opposed:
        found.append(f"caption says camera {said}, measured {label} (confidence {confidence:.2f})")
    level = parsed.fields["motion_level"].lower()
    motion = measured.get("motion_mean")
    if motion is not None and level in ("still",) and motion > 0.1:
        found.append(f"caption says still, measured motion {motion:.2f}")
    if motion is not None and level == "high" and motion < 0.005:
        found.append(f"caption says high motion, measured motion {motion:.3f}")
    return found


def motion_level(motion_mean: float) -> str:
    """xGen motion score (share of moving pixels) → a MOTION_LEVELS word."""
    if motion_mean < 0.005:
        return "still"
    if motion_mean < 0.05:
        return "low"
    if motion_mean < 0.2:
        return "medium"
    return "high"


def fill_labels_from_signals(fields: dict[str, str], measured: dict[str, Any]) -> list[str]:
    """Label fields a reply left empty or outside the vocabulary take the measured value;
    returns a note per replacement (kept with the QC reasons)."""
    notes = []
    if fields["camera_motion"] not in CAMERA_LABELS and measured.get("camera_motion"):
        if fields["camera_motion"]:
            notes.append(f"camera_motion {fields['camera_motion']!r} is not a label; measured used")
        fields["camera_motion"] = str(measured["camera_motion"])
    level = fields["motion_level"].lower().strip()
    if level not in MOTION_LEVELS and measured.get("motion_mean") is not None:
        if level:
            notes.append(f"motion_level {fields['motion_level']!r} is not a level; measured used")
        fields["motion_level"] = motion_level(float(measured["motion_mean"]))
    else:
        fields["motion_level"] = level
    return notes


def variants(fields: dict[str, str], measured: dict[str, Any], original_text: str | None) -> dict[str, str]:
    """Caption variants per clip: short, medium, dense, and one assembled from the fields
    (Open-Sora appends the motion score; SD3-style mixing can pick the original text)."""
    short = fields["short"]
    medium = " ".join(p for p in (short, _sentence("Background", fields["background"]),
                                  _sentence("Camera", fields["camera_motion"].replace("_", " "))) if p)
    assembled = " ".join(p for p in (
        fields["dense"] or short,
        _sentence("Setting", fields["background"]), _sentence("Style", fields["style"]),
        _sentence("Shot", fields["shot_size"]), _sentence("Lighting", fields["lighting"]),
        _sentence("Atmosphere", fields["atmosphere"]),
        _sentence("Camera", fields["camera_motion"].replace("_", " ")),
        _sentence("Motion", fields["motion_level"]),
        f"Motion score: {measured['motion_mean']:.3f}." if measured.get("motion_mean") is not None else "",
        "The frame contains on-screen text." if measured.get("has_text") else "",
    ) if p)
    return {"short": short, "medium": medium, "dense": fields["dense"], "assembled": assembled,
            "original": original_text or ""}


def _sentence(label: str, value: str) -> str:
    value = value.strip().rstrip(".")
    return f"{label}: {value}." if value else ""
