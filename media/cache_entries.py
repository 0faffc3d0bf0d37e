"""Local cache entries in a safe, checksummed format: data only, never code.

An entry is one file: `MAGIC`, the sha256 of the rest, then a little-endian u64 header length,
a JSON header and the parts it indexes (numpy `.npy` arrays loaded with `allow_pickle=False`,
raw bytes such as JPEGs). Reading never runs code, whoever wrote the file. The checksum catches
flipped bytes and truncation; the header names the entry's kind and key, so an entry copied
under another name is refused too. Anything wrong raises `CorruptEntry`: the caller deletes
the entry and recomputes it. (The checksum proves integrity, not authorship: someone who can
write the cache can still forge values, but no longer run code in every worker.)
"""

from __future__ import annotations

import hashlib
import io
import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from media.files import write_bytes_atomically

MAGIC = b"VCENTRY1"
_DIGEST = 32
_LENGTH = struct.Struct("<Q")


class CorruptEntry(ValueError):
    """A cache entry that is truncated, altered, misfiled or not an entry at all."""


@dataclass
class Entry:
    kind: str  # what the entry holds, e.g. "video-analysis"
    key: str  # what it was computed for (content hash + parameters)
    meta: Any = None  # JSON-able values
    arrays: dict[str, np.ndarray] = field(default_factory=dict)  # numeric arrays, no objects
    blobs: dict[str, bytes] = field(default_factory=dict)


def encode_entry(entry: Entry) -> bytes:
    if set(entry.arrays) & set(entry.blobs):
        raise ValueError("an array and a blob share a name")
    parts = [(name, "npy", _npy(array)) for name, array in entry.arrays.items()]
    parts += [(name, "bytes", bytes(blob)) for name, blob in entry.blobs.items()]
    index: dict[str, list[Any]] = {}
    offset = 0
    for name, form, part in parts:
        index[name] = [form, offset, len(part)]
        offset += len(part)
    header = json.dumps({"kind": entry.kind, "key": entry.key, "meta": entry.meta, "parts": index},
                        default=_plain, separators=(",", ":")).encode()
    body = b"".join([_LENGTH.pack(len(header)), header, *(part for _, _, part in parts)])
    return MAGIC + hashlib.sha256(body).digest() + body


def decode_entry(data: bytes, kind: str, key: str) -> Entry:
    """The entry in `data`; CorruptEntry unless it is whole, unaltered and of this kind and key."""
    if len(data) < len(MAGIC) + _DIGEST + _LENGTH.size or not data.startswith(MAGIC):
        raise CorruptEntry("not a cache entry (unknown format, or truncated)")
    body = memoryview(data)[len(MAGIC) + _DIGEST :]
    if hashlib.sha256(body).digest() != data[len(MAGIC) : len(MAGIC) + _DIGEST]:
        raise CorruptEntry("checksum mismatch (altered or truncated)")
    try:
        (length,) = _LENGTH.unpack_from(body)
        header = json.loads(bytes(body[_LENGTH.size : _LENGTH.size + length]))
        payload = body[_LENGTH.size + length :]
        if header["kind"] != kind or header["key"] != key:
            raise CorruptEntry(f"entry is {header['kind']} {header['key']}, expected {kind} {key}")
        entry = Entry(kind, key, header["meta"])
        for name, (form, start, size) in header["parts"].items():
            if start < 0 or size < 0 or start + size > len(payload):
                raise CorruptEntry(f"part {name} lies outside the entry")
            chunk = bytes(payload[start : start + size])
            if form == "npy":
                entry.arrays[name] = np.load(io.BytesIO(chunk), allow_pickle=False)
            else:
                entry.blobs[name] = chunk
    except CorruptEntry:
        raise
    except (ValueError, TypeError, KeyError, RecursionError, struct.error) as exc:  # checksummed, yet wrong
        raise CorruptEntry(f"unreadable entry: {type(exc).__name__}: {exc}") from exc
    return entry


def write_entry(path: Path, entry: Entry) -> None:
    write_bytes_atomically(path, encode_entry(entry))


def read_entry(path: Path, kind: str, key: str) -> Entry | None:
    """The entry at `path`; None when there is none. A corrupt one is deleted (and None
    returned), so it is recomputed instead of read again. OSErrors (EIO, EACCES) propagate:
    they are the machine's, not the entry's."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        return decode_entry(data, kind, key)
    except CorruptEntry:
        discard(path)
        return None


def discard(path: Path) -> None:
    path.unlink(missing_ok=True)


def checksummed_json(payload: Any, kind: str, key: str) -> str:
    """A small JSON entry (captions): the payload with its kind, key and sha256."""
    body = json.dumps(payload, sort_keys=True, default=_plain)
    return json.dumps({"kind": kind, "key": key, "sha256": hashlib.sha256(body.encode()).hexdigest(),
                       "payload": json.loads(body)}, sort_keys=True)


def read_checksummed_json(path: Path, kind: str, key: str) -> Any | None:
    """The payload of a `checksummed_json` file; None when absent. A corrupt file is deleted."""
    try:
        text = path.read_text(encoding="utf-8", errors="strict")
    except FileNotFoundError:
        return None
    except UnicodeDecodeError:
        discard(path)
        return None
    try:
        outer = json.loads(text)
        payload = outer["payload"]
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
        if (outer["kind"], outer["key"], outer["sha256"]) != (kind, key, digest):
            raise CorruptEntry("checksum, kind or key mismatch")
    except (ValueError, TypeError, KeyError, RecursionError):  # CorruptEntry, JSONDecodeError: ValueErrors
        discard(path)
        return None
    return payload


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)  # object arrays refuse
    return buffer.getvalue()


def _plain(value: object) -> object:
    """numpy scalars (np.float32, np.bool_, np.int64) as the Python values they hold."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
