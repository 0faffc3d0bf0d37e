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
    # Why the clip starts and ends where it does: the shot it was cut from, [shot_start_frame,
    # shot_end_frame), and what bounds that shot (video_start | cut | transition, and
    # video_end | cut | transition). A clip starts a trim after the shot's start, or later where
    # a motion spike or the max_clip_s split moved it; the frame statistics' `boundary`
    # column holds every cut and transition of the video. Null on rows written before them.
    pa.field("shot_start_frame", pa.int64()),
    pa.field("shot_start_boundary", pa.string()),
    pa.field("shot_end_frame", pa.int64()),
    pa.field("shot_end_boundary", pa.string()),
    pa.field("frame_stats_path", pa.string(), nullable=False),
    pa.field("contact_sheet_path", pa.string(), nullable=False),
    pa.field("clip_file_path", pa.string()),  # the re-encoded clip, when policy.clips.cut_files
    pa.field("upstream_commit", pa.string(), nullable=False),  # raw_pool commit it came from
])

# scored: one row per clip of the clips tier, every signal stored raw plus the governance
# labels derived from them (quality_checks/routing/scored.py) and the reasons behind each.
SCORED_SCHEMA = pa.schema([
    # lineage
    pa.field("source", pa.string(), nullable=False),
    pa.field("video_id", pa.string(), nullable=False),
    pa.field("clip_id", pa.string(), nullable=False),
    pa.field("sha256", pa.string(), nullable=False),
    pa.field("uri", pa.string(), nullable=False),
    pa.field("license", pa.string(), nullable=False),
    pa.field("start_frame", pa.int64(), nullable=False),
    pa.field("end_frame", pa.int64(), nullable=False),
    pa.field("start_s", pa.float64(), nullable=False),
    pa.field("end_s", pa.float64(), nullable=False),
    pa.field("duration_s", pa.float64(), nullable=False),
    pa.field("fps", pa.float64(), nullable=False),
    pa.field("width", pa.int32(), nullable=False),
    pa.field("height", pa.int32(), nullable=False),
    pa.field("keyframes", pa.list_(KEYFRAME_TYPE)),
    # text (PP-OCR detection on the keyframes)
    pa.field("text_ratio_max", pa.float64(), nullable=False),
    pa.field("text_ratio_mean", pa.float64(), nullable=False),
    pa.field("text_box_max_px", pa.int64(), nullable=False),  # at keyframe size
    pa.field("text_box_max_fraction", pa.float64(), nullable=False),
    pa.field("text_keyframes", pa.int32(), nullable=False),
    pa.field("subtitle_band", pa.bool_(), nullable=False),
    pa.field("corner_text", pa.bool_(), nullable=False),
    # where the text is, over the keyframes ("+"-joined: bottom_band, top_band, corner, centre,
    # ticker); null without text
    pa.field("text_regions", pa.string(), nullable=True),
    # the text outside the subtitle band: what decides heavy text when subtitles are kept
    pa.field("text_ratio_outside_subtitles_max", pa.float64(), nullable=False),
    pa.field("text_box_outside_subtitles_max_fraction", pa.float64(), nullable=False),
    # watermark / logo / borders
    pa.field("watermark_score", pa.float64(), nullable=False),
    pa.field("watermark_corner", pa.string()),
    pa.field("border_top", pa.float64(), nullable=False),  # fractions of the frame
    pa.field("border_bottom", pa.float64(), nullable=False),
    pa.field("border_left", pa.float64(), nullable=False),
    pa.field("border_right", pa.float64(), nullable=False),
    # safety
    pa.field("nsfw_max", pa.float64(), nullable=False),
    pa.field("nsfw_mean", pa.float64(), nullable=False),
    # per distinct keyframe (the order of phashes): OpenNSFW, and media.signals.nsfw.drawn_score
    # (null where OpenNSFW was below SignalParams.drawn_min_nsfw: not measured)
    pa.field("keyframe_nsfw", pa.list_(pa.float64()), nullable=False),
    pa.field("keyframe_drawn", pa.list_(pa.float64()), nullable=False),
    # quality
    pa.field("sharpness", pa.float64(), nullable=False),
    pa.field("exposure_under", pa.float64(), nullable=False),
    pa.field("exposure_over", pa.float64(), nullable=False),
    pa.field("exposure_label", pa.string(), nullable=False),
    pa.field("brightness", pa.float64(), nullable=False),
    pa.field("contrast", pa.float64(), nullable=False),
    pa.field("colourfulness", pa.float64(), nullable=False),
    pa.field("noise", pa.float64(), nullable=False),
    pa.field("blockiness", pa.float64(), nullable=False),
    pa.field("technical_quality", pa.float64(), nullable=False),
    pa.field("aesthetic", pa.float64()),  # null without an aesthetic backend
    # motion and camera
    pa.field("motion_mean", pa.float64(), nullable=False),
    pa.field("motion_max", pa.float64(), nullable=False),
    pa.field("camera_motion", pa.string(), nullable=False),
    pa.field("camera_jitter", pa.float64(), nullable=False),
    pa.field("camera_pan_speed", pa.float64(), nullable=False),
    pa.field("camera_tilt_speed", pa.float64(), nullable=False),
    pa.field("camera_zoom_speed", pa.float64(), nullable=False),
    pa.field("camera_confidence", pa.float64(), nullable=False),
    # duplicates and concepts
    pa.field("content_key", pa.string(), nullable=False),
    pa.field("phashes", pa.list_(pa.uint64()), nullable=False),
    # media.signals.dedup.temporal_signature: luma mean and spread per frame, resampled over the clip
    pa.field("temporal_signature", pa.list_(pa.float32()), nullable=False),
    pa.field("embedder", pa.string(), nullable=False),
    pa.field("duplicate_group", pa.string(), nullable=False),  # the kept clip's id
    pa.field("duplicate_of", pa.string()),  # null for the kept clip
    pa.field("duplicate_match", pa.string()),  # exact | phash | embedding
    pa.field("duplicate_similarity", pa.float64()),
    pa.field("concept_cluster", pa.int32(), nullable=False),
    pa.field("concept_similarity", pa.float64(), nullable=False),
    # governance (policy.scored; reasons name the field they applied)
    pa.field("safety_label", pa.string(), nullable=False),
    pa.field("safety_reason", pa.string()),
    pa.field("provenance_label", pa.string(), nullable=False),
    pa.field("provenance_reason", pa.string()),
    pa.field("watermark_label", pa.string(), nullable=False),
    pa.field("watermark_reason", pa.string()),
    pa.field("quality_label", pa.string(), nullable=False),
    pa.field("quality_reason", pa.string()),
    pa.field("motion_label", pa.string(), nullable=False),  # frozen | static | moving
    pa.field("motion_reason", pa.string()),
    pa.field("review_status", pa.string(), nullable=False),
    pa.field("review_reason", pa.string()),
    pa.field("route", pa.string(), nullable=False),
    pa.field("route_reasons", pa.list_(pa.string()), nullable=False),
    pa.field("weight", pa.float64(), nullable=False),
    # versions
    pa.field("signals_fingerprint", pa.string(), nullable=False),
    pa.field("policy_hash", pa.string(), nullable=False),
    pa.field("upstream_commit", pa.string(), nullable=False),  # clips commit it came from
])

# Clip embeddings, next to the scored table: what global dedup and concept clusters read.
EMBEDDINGS_SCHEMA = pa.schema([
    pa.field("clip_id", pa.string(), nullable=False),
    pa.field("embedder", pa.string(), nullable=False),
    pa.field("embedding", pa.list_(pa.float32()), nullable=False),
    # the clip's centre-region vector (same embedder; crop dedup): null for DINOv2, and absent
    # from tables written before it (readers take a missing column as all null)
    pa.field("centre_embedding", pa.list_(pa.float32())),
    # a centre crop of the clip's middle keyframe, embedded (crop dedup): null as above
    pa.field("crop_embedding", pa.list_(pa.float32())),
    # that middle keyframe embedded whole, what other clips' crops are compared with: null as above
    pa.field("middle_embedding", pa.list_(pa.float32())),
])

EVENT_TYPE = pa.struct([
    pa.field("start_s", pa.float64()),
    pa.field("end_s", pa.float64()),
    pa.field("text", pa.string()),
])

# captioned: one row per clip that scored routed to captioning (policy.captioned.routes).
CAPTIONED_SCHEMA = pa.schema([
    pa.field("source", pa.string(), nullable=False),
    pa.field("video_id", pa.string(), nullable=False),
    pa.field("clip_id", pa.string(), nullable=False),
    pa.field("uri", pa.string(), nullable=False),
    pa.field("start_s", pa.float64(), nullable=False),
    pa.field("end_s", pa.float64(), nullable=False),
    pa.field("duration_s", pa.float64(), nullable=False),
    pa.field("width", pa.int32(), nullable=False),
    pa.field("height", pa.int32(), nullable=False),
    pa.field("route", pa.string(), nullable=False),  # from scored
    pa.field("backend", pa.string(), nullable=False),  # policy.captioned.backends[].name
    pa.field("backend_kind", pa.string(), nullable=False),
    pa.field("model", pa.string(), nullable=False),
    pa.field("prompt_version", pa.string(), nullable=False),
    pa.field("raw_text", pa.string()),  # the model's reply, as received
    pa.field("error", pa.string()),  # why no reply came back
    pa.field("parse_status", pa.string(), nullable=False),  # ok | repaired | failed
    *[pa.field(name, pa.string(), nullable=False) for name in (
        "short", "dense", "background", "style", "shot_size", "lighting", "atmosphere",
        "camera_motion", "motion_level")],
    pa.field("events", pa.list_(EVENT_TYPE), nullable=False),
    pa.field("caption_short", pa.string(), nullable=False),
    pa.field("caption_medium", pa.string(), nullable=False),
    pa.field("caption_dense", pa.string(), nullable=False),
    pa.field("caption_assembled", pa.string(), nullable=False),
    pa.field("original_text", pa.string()),  # sidecar title/description, when the source has it
    pa.field("caption_words", pa.int32(), nullable=False),
    pa.field("qc_status", pa.string(), nullable=False),  # ok | needs_review | rejected
    pa.field("qc_reasons", pa.list_(pa.string()), nullable=False),
    pa.field("prompt_tokens", pa.int64(), nullable=False),
    pa.field("completion_tokens", pa.int64(), nullable=False),
    pa.field("seconds", pa.float64(), nullable=False),
    pa.field("cache_key", pa.string(), nullable=False),  # (clip, backend, model, prompt, keyframes)
    pa.field("upstream_commit", pa.string(), nullable=False),  # scored commit it came from
])

# stage_256p / stage_480p / stage_720p / sft: one training sample per row, media in lakeFS.
STAGE_SCHEMA = pa.schema([
    pa.field("sample_id", pa.string(), nullable=False),
    pa.field("stage", pa.string(), nullable=False),
    pa.field("source", pa.string(), nullable=False),
    pa.field("video_id", pa.string(), nullable=False),
    pa.field("clip_id", pa.string(), nullable=False),
    pa.field("uri", pa.string(), nullable=False),
    pa.field("start_frame", pa.int64(), nullable=False),
    pa.field("end_frame", pa.int64(), nullable=False),
    pa.field("start_s", pa.float64(), nullable=False),
    pa.field("duration_s", pa.float64(), nullable=False),
    pa.field("fps", pa.float64(), nullable=False),  # of the source
    pa.field("source_width", pa.int32(), nullable=False),
    pa.field("source_height", pa.int32(), nullable=False),
    pa.field("concept_cluster", pa.int32(), nullable=False),
    pa.field("technical_quality", pa.float64(), nullable=False),
    pa.field("caption", pa.string(), nullable=False),
    pa.field("caption_variant", pa.string(), nullable=False),
    pa.field("bucket_aspect", pa.string(), nullable=False),
    pa.field("width", pa.int32(), nullable=False),  # exported media
    pa.field("height", pa.int32(), nullable=False),
    pa.field("frames", pa.int32(), nullable=False),
    pa.field("out_fps", pa.float64(), nullable=False),
    pa.field("weight", pa.float64(), nullable=False),
    pa.field("media_path", pa.string(), nullable=False),
    pa.field("media_bytes", pa.int64(), nullable=False),
    pa.field("scored_commit", pa.string(), nullable=False),
    pa.field("policy_hash", pa.string(), nullable=False),
])

# Review decisions of one source (`sources/<source>/reviews.parquet`): an append-only log, the
# latest row per clip wins; `signals_fingerprint` is the hash of the scored signals a person saw.
REVIEWS_SCHEMA = pa.schema([
    pa.field("clip_id", pa.string(), nullable=False),
    pa.field("video_id", pa.string(), nullable=False),
    pa.field("source", pa.string(), nullable=False),
    pa.field("decision", pa.string(), nullable=False),  # approved | rejected
    pa.field("reason", pa.string(), nullable=False),
    pa.field("reviewer", pa.string(), nullable=False),
    pa.field("decided_at", pa.timestamp("us", tz="UTC"), nullable=False),
    pa.field("signals_fingerprint", pa.string(), nullable=False),
])
