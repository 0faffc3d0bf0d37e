"""Table contracts: the columns each tier publishes. The schema checks enforce these."""

from __future__ import annotations

import pyarrow as pa

RAW_POOL_STATUSES = ("accepted", "rejected", "opted_out")

RAW_POOL_SCHEMA = pa.schema([
    pa.field("source", pa.string(), nullable=False),
    pa.field("video_id", pa.string(), nullable=False),
    pa.field("uri", pa.string(), nullable=False),
    pa.field("sha256", pa.string(), nullable=False),
    pa.field("bytes", pa.int64(), nullable=False),
    pa.field("fingerprint", pa.string(), nullable=False),  # size + mtime/etag: change detection
    pa.field("container_format", pa.string()),
    pa.field("codec", pa.string()),
    pa.field("pix_fmt", pa.string()),
    pa.field("duration_s", pa.float64()),
    pa.field("container_duration_s", pa.float64()),
    pa.field("fps", pa.float64()),
    pa.field("frame_count", pa.int64()),
    pa.field("width", pa.int32()),
    pa.field("height", pa.int32()),
    pa.field("rotation", pa.int32()),
    pa.field("display_width", pa.int32()),
    pa.field("display_height", pa.int32()),
    pa.field("bitrate", pa.int64()),
    pa.field("bits_per_pixel", pa.float64()),
    pa.field("has_audio", pa.bool_()),
    pa.field("audio_codec", pa.string()),
    pa.field("vfr", pa.bool_()),
    pa.field("probe_error", pa.string()),  # probe's reason code; null when readable
    pa.field("probe_detail", pa.string()),
    pa.field("notes", pa.string()),  # accepted-but-odd: VFR, broken container duration
    pa.field("license", pa.string(), nullable=False),
    pa.field("fetched_at", pa.timestamp("us", tz="UTC"), nullable=False),
    pa.field("status", pa.string(), nullable=False),
    pa.field("reason", pa.string()),
    pa.field("reason_detail", pa.string()),
])

KEYFRAME_TYPE = pa.struct([
    pa.field("role", pa.string()),  # start | middle | motion_peak | end
    pa.field("frame", pa.int64()),
    pa.field("path", pa.string()),  # lakeFS path of the JPEG
])

CLIPS_SCHEMA = pa.schema([
    pa.field("source", pa.string(), nullable=False),
    pa.field("video_id", pa.string(), nullable=False),
    pa.field("clip_id", pa.string(), nullable=False),
    pa.field("sha256", pa.string(), nullable=False),
    pa.field("uri", pa.string(), nullable=False),
    pa.field("start_frame", pa.int64(), nullable=False),  # first frame of the clip
    pa.field("end_frame", pa.int64(), nullable=False),  # one past its last frame
    pa.field("start_s", pa.float64(), nullable=False),
    pa.field("end_s", pa.float64(), nullable=False),
    pa.field("duration_s", pa.float64(), nullable=False),
    pa.field("video_frame_count", pa.int64(), nullable=False),
    pa.field("fps", pa.float64(), nullable=False),
    pa.field("width", pa.int32(), nullable=False),  # display size (rotation applied)
    pa.field("height", pa.int32(), nullable=False),
    pa.field("detector", pa.string(), nullable=False),
    pa.field("detector_params", pa.string(), nullable=False),  # JSON
    pa.field("analysis_fingerprint", pa.string(), nullable=False),
    pa.field("motion_mean", pa.float64()),
    pa.field("motion_max", pa.float64()),
    pa.field("sharpness_mean", pa.float64()),
    pa.field("luma_mean", pa.float64()),
    pa.field("luma_std_mean", pa.float64()),
    pa.field("keyframes", pa.list_(KEYFRAME_TYPE)),
    pa.field("frame_stats_path", pa.string(), nullable=False),
    pa.field("contact_sheet_path", pa.string(), nullable=False),
    pa.field("clip_file_path", pa.string()),  # the re-encoded clip, when policy.clips.cut_files
    pa.field("upstream_commit", pa.string(), nullable=False),  # raw_pool commit it came from
])
