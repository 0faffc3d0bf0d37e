"""Caches you can trust, faults are faults (issue 16): the local work cache through real runs.

A second source holding the same bytes reads the first one's cache entries, so damaging an
entry between the two runs shows what a damaged cache publishes. Disk faults are real: the
cache sits on a small tmpfs (filled up, or remounted read-only) or, without the right to
mount, on a folder this user may not write to.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import pickle
import signal
import struct
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from dagster import materialize

from assets.clips.asset import clips
from assets.common.layout import embeddings_path, failures_path, tier_path
from assets.raw_pool.asset import raw_pool
from assets.scored.asset import scored
from assets.upkeep.optout import purge_optout
from resources.optout import add_optout
from tests.conftest import Pipeline, materialization_metadata, write_registry
from tests.video_factory import write_cut_video, write_video

PROJECT = Path(__file__).resolve().parent.parent
SOURCES = ("a", "b", "c", "d", "e")


# --- helpers ---------------------------------------------------------------------------------

def _registry(workdir: Path) -> Path:
    """Every source lists the same folder: the same bytes, the same video ids."""
    return write_registry(workdir, [{"id": s, "kind": "local", "uri": "videos", "license": "CC0-1.0"}
                                    for s in SOURCES])


def _run(pipeline: Pipeline, registry: Path, source: str, tier: object, raise_on_error: bool = True):
    return materialize([raw_pool, clips, scored], selection=[tier], partition_key=source,
                       resources=pipeline.resources(registry), instance=pipeline.instance,
                       raise_on_error=raise_on_error)


def _entries(cache: Path) -> list[Path]:
    """The cache's entry files, whatever their format (cut-file folders aside)."""
    return sorted(p for p in cache.rglob("*") if p.is_file() and p.suffix != ".mp4")


def _only_entry(cache: Path) -> Path:
    found = _entries(cache)
    assert len(found) == 1, found
    return found[0]


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    for i in range(len(data) // 2, len(data) // 2 + 4):
        data[i] ^= 0x5A
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


class _CreatesAFile:
    """Unpickling this opens (creates) `marker`: what a poisoned cache could do in every worker."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _source_free(value: object, source: str) -> object:
    """A row with what names its source (paths, the source column) made source-independent."""
    if isinstance(value, str):
        return value.replace(f"sources/{source}/", "sources/*/")
    if isinstance(value, dict):
        return {k: _source_free(v, source) for k, v in value.items()
                if k not in ("source", "upstream_commit")}
    if isinstance(value, list):
        return [_source_free(v, source) for v in value]
    return value


def _clips_of(pipeline: Pipeline, source: str) -> tuple[list[dict], dict[str, bytes]]:
    """A source's clip rows and the bytes of every object they cite (keyed source-free)."""
    rows = pipeline.lakefs.read_table(tier_path(source, "clips")).to_pylist()
    paths = {k["path"] for r in rows for k in r["keyframes"]}
    paths |= {r["frame_stats_path"] for r in rows} | {r["contact_sheet_path"] for r in rows}
    objects = {str(_source_free(p, source)): pipeline.lakefs.read_bytes(p) for p in paths}
    return [_source_free(r, source) for r in rows], objects


def _entry_header(data: bytes) -> dict:
    from media.cache_entries import MAGIC

    start = len(MAGIC) + 32
    (length,) = struct.unpack_from("<Q", data, start)
    return json.loads(data[start + 8 : start + 8 + length])


# --- clips: analysis entries -------------------------------------------------------------------

def test_a_damaged_analysis_entry_is_recomputed_and_never_published(pipeline: Pipeline, workdir: Path):
    write_cut_video(workdir / "videos" / "cuts.mp4", segment_seconds=(3.0, 3.0), fps=24)
    registry = _registry(workdir)
    cache = workdir / "cache" / "analysis"
    pipeline.run(registry, "a")
    _run(pipeline, registry, "a", clips)
    clean_rows, clean_objects = _clips_of(pipeline, "a")
    entry = _only_entry(cache)

    def damage_then_run(source: str, damage: Callable[[Path], None]) -> bytes:
        damage(entry)
        damaged = entry.read_bytes()
        pipeline.run(registry, source)
        meta = materialization_metadata(_run(pipeline, registry, source, clips))
        assert (meta["videos_analysed"], meta["videos_from_cache"], meta["videos_failed"]) == (1, 0, 0)
        rows, objects = _clips_of(pipeline, source)
        assert rows == clean_rows  # the same clips, spans and statistics as the clean run
        assert objects == clean_objects  # byte for byte: keyframes, frame statistics, sheet
        assert _only_entry(cache) == entry and entry.read_bytes() != damaged  # recomputed in place
        return entry.read_bytes()

    damage_then_run("b", _flip)
    damage_then_run("c", _truncate)

    # A keyframe that is no JPEG, in an entry whose checksum is right (written that way):
    # the contact sheet would crash on it every run; it is recomputed instead.
    from media.cache_entries import decode_entry, encode_entry

    def bad_keyframe(path: Path) -> None:
        header = _entry_header(path.read_bytes())
        held = decode_entry(path.read_bytes(), header["kind"], header["key"])
        frame = next(iter(held.blobs))
        held.blobs[frame] = b"\xff\xd8 not a jpeg"
        path.write_bytes(encode_entry(held))

    damage_then_run("d", bad_keyframe)

    # A pickle whose unpickling runs code is never unpickled: its file never appears.
    marker = workdir / "pwned"
    damage_then_run("e", lambda path: path.write_bytes(pickle.dumps(_CreatesAFile(marker))))
    assert not marker.exists()


def test_a_file_changed_after_raw_pool_fails_its_video_and_caches_nothing_under_the_old_hash(
        pipeline: Pipeline, workdir: Path):
    write_cut_video(workdir / "videos" / "cuts.mp4", segment_seconds=(3.0, 3.0), fps=24)
    write_video(workdir / "videos" / "steady.mp4", seconds=3.0, seed=1)
    registry = _registry(workdir)
    pipeline.run(registry, "a")
    head = pipeline.lakefs.head()
    old = {r["uri"]: r for r in pipeline.lakefs.read_table(tier_path("a", "raw_pool")).to_pylist()}
    write_video(workdir / "videos" / "steady.mp4", seconds=3.0, seed=7)  # rewritten in place

    result = _run(pipeline, registry, "a", clips, raise_on_error=False)
    assert not result.success
    check = {c.check_name: c for c in result.get_asset_check_evaluations()}
    failed = check["clips_failed_videos_within_limit"]
    assert not failed.passed
    assert "SourceChanged: changed since raw_pool: re-run raw_pool" in (
        failed.metadata["examples"].value)
    assert pipeline.lakefs.head() == head  # nothing merged
    cache = workdir / "cache" / "analysis"
    changed_sha = old["videos/steady.mp4"]["sha256"]
    assert not [p for p in cache.rglob("*") if changed_sha in str(p)]  # nothing under the old id
    assert [p for p in cache.rglob("*") if old["videos/cuts.mp4"]["sha256"] in str(p)]

    # Policy may accept a share of failed videos: the unchanged one publishes, the reason is shown.
    pipeline.policy_path = str(workdir / "policy.yaml")
    Path(pipeline.policy_path).write_text("clips:\n  max_failed_rate: 0.5\n")
    meta = materialization_metadata(_run(pipeline, registry, "a", clips))
    assert meta["videos_analysed"] == 1 and meta["videos_failed"] == 1
    assert "changed since raw_pool: re-run raw_pool" in meta["failures"]
    published = pipeline.lakefs.read_table(tier_path("a", "clips")).to_pylist()
    assert {r["uri"] for r in published} == {"videos/cuts.mp4"}
    # Which video failed is in lakeFS, not in the event log (no purge reaches that) ...
    steady = old["videos/steady.mp4"]["video_id"]
    assert steady not in meta["failures"] and "clips_failures.parquet" in meta["failures"]
    failures = pipeline.lakefs.read_table(failures_path("a", "clips")).to_pylist()
    assert [(f["video_id"], f["tier"]) for f in failures] == [(steady, "clips")]
    assert "changed since raw_pool" in failures[0]["reason"] and "steady.mp4" not in failures[0]["reason"]
    # ... where a takedown of the video removes its row.
    add_optout(pipeline.optout_path, {"video_id": steady, "reason": "r", "requested_at": "2026-12-04",
                                      "requested_by": "a@b"}, whole_source=False)
    resources = pipeline.resources(registry)
    assert purge_optout.execute_in_process(
        instance=pipeline.instance,
        resources={k: resources[k] for k in ("lakefs", "optouts", "sources")}).success
    assert pipeline.lakefs.read_table(failures_path("a", "clips")).num_rows == 0


# --- machine faults: a full, read-only or forbidden cache ---------------------------------------

@pytest.fixture
def small_disk() -> Iterator[Callable[[Path, str], bool]]:
    """mount(path, size): a tmpfs of `size` at `path`; False when this user may not mount."""
    mounted: list[Path] = []

    def mount(path: Path, size: str) -> bool:
        path.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "vcurate-test", str(path)],
                              capture_output=True).returncode == 0
        if done:
            mounted.append(path)
        return done

    yield mount
    for path in reversed(mounted):
        subprocess.run(["umount", "-l", str(path)], check=False)


def _fill(folder: Path) -> None:
    """Write until the filesystem is full."""
    with open(folder / "filler", "wb") as out:
        try:
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC


def _break_storage(fault: str, folder: Path, mount: Callable[[Path, str], bool]) -> Callable[[], int]:
    """Put `folder` on storage that works now; returns `fail()`, which breaks it and says the
    errno writers will see from then on."""
    if fault == "full":
        if not mount(folder, "8m"):
            pytest.skip("this user may not mount a tmpfs (a full disk needs one)")
        return lambda: (_fill(folder), errno.ENOSPC)[1]
    if mount(folder, "8m"):  # read-only: a remount, as a failing disk often goes
        return lambda: (subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True),
                        errno.EROFS)[1]
    if os.geteuid() == 0:
        pytest.skip("root writes through file modes and may not mount here")
    folder.mkdir(parents=True, exist_ok=True)

    def forbid() -> int:
        for path in [folder, *folder.rglob("*")]:
            if path.is_dir():
                path.chmod(0o555)
        return errno.EACCES

    return forbid


def _assert_machine_failure(result, code: int, cache: Path) -> None:
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.user_failure_data
    assert failure is not None
    assert f"the machine failed: {errno.errorcode[code]}" in failure.description
    assert str(cache) in failure.description  # the path it failed at
    assert "no video was marked failed" in failure.description
    assert not list(cache.rglob("*.part"))  # no partial file keeps the disk full


@pytest.mark.parametrize("fault", ["full", "read-only"])
def test_a_broken_analysis_cache_fails_clips_and_main_keeps_the_last_good_clips(
        pipeline: Pipeline, workdir: Path, small_disk, fault: str):
    write_cut_video(workdir / "videos" / "cuts.mp4", segment_seconds=(3.0, 3.0), fps=24)
    registry = _registry(workdir)
    cache = workdir / "cache" / "analysis"
    fail = _break_storage(fault, cache, small_disk)
    pipeline.run(registry, "a")
    _run(pipeline, registry, "a", clips)
    head = pipeline.lakefs.head()
    rows, objects = _clips_of(pipeline, "a")

    pipeline.policy_path = str(workdir / "policy.yaml")
    Path(pipeline.policy_path).write_text("clips:\n  trim_frames: 8\n")  # every video re-analysed
    code = fail()
    result = _run(pipeline, registry, "a", clips, raise_on_error=False)
    _assert_machine_failure(result, code, cache)
    assert pipeline.lakefs.head() == head  # nothing merged: not "0 clips", not keyframes deleted
    assert _clips_of(pipeline, "a") == (rows, objects)


def test_a_full_signals_cache_fails_scored_and_merges_nothing(pipeline: Pipeline, workdir: Path,
                                                              small_disk):
    write_cut_video(workdir / "videos" / "cuts.mp4", segment_seconds=(3.0, 3.0), fps=24)
    registry = _registry(workdir)
    cache = workdir / "cache" / "signals"
    fail = _break_storage("full", cache, small_disk)
    pipeline.run(registry, "a")
    _run(pipeline, registry, "a", clips)
    head = pipeline.lakefs.head()
    code = fail()
    result = _run(pipeline, registry, "a", scored, raise_on_error=False)
    _assert_machine_failure(result, code, cache)
    assert pipeline.lakefs.head() == head
    assert pipeline.lakefs.read_table(tier_path("a", "scored")) is None


# --- scored: signals entries ---------------------------------------------------------------------

def test_a_damaged_signals_entry_is_recomputed_and_never_published(pipeline: Pipeline, workdir: Path):
    from assets.scored.rows import SIGNAL_COLUMNS

    write_cut_video(workdir / "videos" / "cuts.mp4", segment_seconds=(3.0, 3.0), fps=24)
    registry = _registry(workdir)
    cache = workdir / "cache" / "signals"

    def signals_of(source: str) -> dict[str, tuple[dict, list[float]]]:
        rows = pipeline.lakefs.read_table(tier_path(source, "scored")).to_pylist()
        vectors = dict(zip(*pipeline.lakefs.read_table(embeddings_path(source))
                           .select(["clip_id", "embedding"]).to_pydict().values(), strict=True))
        return {r["clip_id"]: ({k: r[k] for k in SIGNAL_COLUMNS}, vectors[r["clip_id"]]) for r in rows}

    pipeline.run(registry, "a")
    _run(pipeline, registry, "a", clips)
    _run(pipeline, registry, "a", scored)
    clean = signals_of("a")
    entry = _only_entry(cache)
    marker = workdir / "pwned"

    for source, damage in (("b", _flip), ("c", _truncate),
                           ("d", lambda p: p.write_bytes(pickle.dumps(_CreatesAFile(marker))))):
        pipeline.run(registry, source)
        _run(pipeline, registry, source, clips)
        damage(entry)
        damaged = entry.read_bytes()
        meta = materialization_metadata(_run(pipeline, registry, source, scored))
        assert (meta["videos_scored"], meta["videos_from_cache"], meta["videos_failed"]) == (1, 0, 0)
        assert signals_of(source) == clean, source  # every signal and embedding as in the clean run
        assert _only_entry(cache) == entry and entry.read_bytes() != damaged  # the same key, recomputed
    assert not marker.exists()


# --- captioned: checksummed JSON ----------------------------------------------------------------

def _routed_row(video_id: str, clip_id: str) -> dict:
    ok, jpeg = cv2.imencode(".jpg", np.full((96, 128, 3), 120, np.uint8))
    assert ok
    return {
        "source": "a", "video_id": video_id, "clip_id": clip_id, "uri": "videos/x.mp4",
        "start_s": 0.0, "end_s": 3.0, "duration_s": 3.0, "width": 320, "height": 240, "route": "train",
        "start_frame": 0, "fps": 24.0,
        "keyframes": [{"role": "start", "frame": 0, "path": "k/0.jpg"}],
        "camera_motion": "static", "camera_confidence": 0.9, "motion_mean": 0.01,
        "exposure_label": "normal", "brightness": 0.5, "subtitle_band": False, "text_ratio_max": 0.0,
        "technical_quality": 0.7, "_jpeg": jpeg.tobytes(),
    }


@pytest.mark.parametrize("damage", ["flip", "truncate", "pre-checksum", "wrong shape"])
def test_a_damaged_caption_entry_is_recaptioned(tmp_path: Path, damage: str):
    from assets.captioned.rows import build_captions
    from quality_checks.policy.captioned import CaptionedPolicy
    from resources.captioners.signals import SignalsCaptioner

    row = _routed_row("v" + "1" * 32, "c" + "2" * 24)
    frames = {"k/0.jpg": row.pop("_jpeg")}

    def caption() -> tuple[list[dict], int]:
        table, stats = build_captions([row], None, CaptionedPolicy(), lambda backend: SignalsCaptioner(),
                                      frames.get, tmp_path, "commit")
        # wall time differs between a fresh caption and a cached one; everything else is equal
        return [{k: v for k, v in r.items() if k != "seconds"} for r in table.to_pylist()], stats.from_cache

    first, _ = caption()
    entry = _only_entry(tmp_path)
    assert caption() == (first, 1)  # a sound entry is read back
    text = entry.read_text()
    if damage == "flip":
        middle = len(text) // 2
        entry.write_text(text[:middle] + chr(ord(text[middle]) ^ 1) + text[middle + 1 :])
    elif damage == "truncate":
        entry.write_text(text[: len(text) // 2])
    elif damage == "pre-checksum":  # what the cache held before entries had a checksum
        entry.write_text(json.dumps(json.loads(text)["payload"]))
    else:
        from media.cache_entries import checksummed_json

        key = json.loads(text)["key"]
        entry.write_text(checksummed_json({"clip_id": row["clip_id"], "oops": 1}, "caption", key))
    assert caption() == (first, 0)  # asked again, the same caption
    assert caption() == (first, 1)  # and the entry is sound again


# --- atomic writes and fault classification -----------------------------------------------------

def _python(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *args], cwd=PROJECT, capture_output=True, text=True,
                          timeout=60)


def test_a_failed_write_leaves_no_part_and_names_its_file(tmp_path: Path):
    """A real write limit (RLIMIT_FSIZE): the write fails half-way with EFBIG."""
    target = tmp_path / "entry.bin"
    done = _python(
        "import resource, signal, sys\n"
        "from pathlib import Path\n"
        "from media.files import write_bytes_atomically\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))\n"
        "try:\n"
        "    write_bytes_atomically(Path(sys.argv[1]), b'x' * 1_000_000)\n"
        "except OSError as exc:\n"
        "    print(exc.errno, exc.filename)\n", str(target))
    assert done.stdout.split() == [str(errno.EFBIG), str(target)], done.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_part_left_by_a_killed_writer_goes_with_the_next_write(tmp_path: Path):
    from media.files import atomic_path, remove_abandoned_parts, write_bytes_atomically

    target = tmp_path / "entry.bin"
    killed = _python(
        "import os, signal, sys\n"
        "from pathlib import Path\n"
        "from media.files import atomic_path\n"
        "with atomic_path(Path(sys.argv[1])) as part:\n"
        "    part.write_bytes(b'half of it')\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n", str(target))
    assert killed.returncode == -signal.SIGKILL
    assert len(list(tmp_path.glob("*.part"))) == 1
    with atomic_path(target) as live:  # the next writer: the dead writer's part goes
        assert list(tmp_path.glob("*.part")) == [live]
        assert remove_abandoned_parts(target) == [] and live.exists()  # a live writer's part stays
    write_bytes_atomically(target, b"whole")
    assert [p.name for p in tmp_path.iterdir()] == ["entry.bin"] and target.read_bytes() == b"whole"


@pytest.mark.parametrize(("exc", "machine"), [
    (OSError(errno.ENOSPC, "No space left on device"), True),
    (OSError(errno.EIO, "Input/output error"), True),
    (PermissionError(errno.EACCES, "Permission denied", "/cache/x"), True),
    (OSError(errno.EROFS, "Read-only file system"), True),
    (OSError(errno.EDQUOT, "Disk quota exceeded"), True),
    (FileNotFoundError(errno.ENOENT, "No such file", "/videos/x.mp4"), False),
    (ValueError("no frame could be decoded"), False),
])
def test_machine_faults_are_told_from_bad_media(exc: BaseException, machine: bool):
    from assets.common.cache import machine_fault

    report = machine_fault(exc, "/cache/entry")
    assert (report is not None) == machine
    if report is not None:
        assert report.path == (exc.filename or "/cache/entry")


def test_pyav_read_errors_are_the_videos_but_a_full_disk_is_the_machines():
    import av

    from assets.common.cache import machine_fault

    assert machine_fault(av.error.OSError(errno.EIO, "Input/output error", "x.mp4")) is None
    assert machine_fault(av.error.OSError(errno.ENOSPC, "No space left", "out.mp4")) is not None


def test_an_entry_refuses_what_it_was_not_written_as():
    from media.cache_entries import CorruptEntry, Entry, decode_entry, encode_entry

    data = encode_entry(Entry("k", "key-1", {"n": np.float32(0.5)}, {"a": np.arange(3.0)}, {"b": b"\x00"}))
    held = decode_entry(data, "k", "key-1")
    assert held.meta == {"n": 0.5} and held.arrays["a"].tolist() == [0.0, 1.0, 2.0] and held.blobs == {
        "b": b"\x00"}
    for kind, key in (("k", "key-2"), ("other", "key-1")):  # misfiled: another key's or kind's entry
        with pytest.raises(CorruptEntry):
            decode_entry(data, kind, key)
    with pytest.raises(ValueError):  # object arrays would need pickle
        encode_entry(Entry("k", "key", arrays={"o": np.array([{}], dtype=object)}))


def test_an_entry_whose_array_is_a_pickle_is_refused_unread(tmp_path: Path):
    """A well-checksummed entry whose .npy part holds an object array (a pickle inside)."""
    from media.cache_entries import MAGIC, CorruptEntry, decode_entry

    marker = tmp_path / "pwned"
    buffer = io.BytesIO()
    np.save(buffer, np.array([_CreatesAFile(marker)], dtype=object), allow_pickle=True)
    header = json.dumps({"kind": "k", "key": "key", "meta": None,
                         "parts": {"o": ["npy", 0, len(buffer.getvalue())]}}).encode()
    body = struct.pack("<Q", len(header)) + header + buffer.getvalue()
    with pytest.raises(CorruptEntry):
        decode_entry(MAGIC + hashlib.sha256(body).digest() + body, "k", "key")
    assert not marker.exists()
