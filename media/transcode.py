"""Exact re-encodes of frame spans: a clip file holds exactly the frames of its span."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import av


def cut_clips_decoding(source: Path, spans: Sequence[tuple[int, int]], outputs: Sequence[Path],
                       crf: int = 18) -> list[int]:
    """Re-encode each half-open frame span of `source` to H.264 MP4, in one decode.

    Spans must be sorted and must not overlap. Timestamps stay relative to each clip's
    first frame in the source's time base, so variable frame rate survives; the display
    rotation is carried over. Returns the frames written per output.
    """
    written = [0] * len(spans)
    with av.open(str(source)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate or 25
        current = -1
        out: av.container.OutputContainer | None = None
        encoder = None
        first_pts = 0
        for index, frame in enumerate(container.decode(stream)):
            while current + 1 < len(spans) and index >= spans[current + 1][0]:
                _close(out, encoder)
                out, encoder = None, None
                current += 1
            if current < 0 or index >= spans[current][1]:
                if current == len(spans) - 1 and index >= spans[current][1]:
                    break
                continue
            if out is None:
                out = av.open(str(outputs[current]), "w")
                encoder = out.add_stream("libx264", rate=rate, options={"crf": str(crf)})
                encoder.width, encoder.height = frame.width // 2 * 2, frame.height // 2 * 2
                encoder.pix_fmt = "yuv420p"
                encoder.time_base = stream.time_base
                encoder.codec_context.time_base = stream.time_base
                if frame.rotation:
                    encoder.set_display_rotation(int(round(frame.rotation)))
                first_pts = frame.pts or 0
            picture = frame.reformat(width=encoder.width, height=encoder.height, format="yuv420p")
            picture.pts = (frame.pts - first_pts) if frame.pts is not None else written[current]
            picture.time_base = stream.time_base
            out.mux(encoder.encode(picture))
            written[current] += 1
        _close(out, encoder)
    return written


def _close(out: av.container.OutputContainer | None, encoder: object) -> None:
    if out is not None:
        out.mux(encoder.encode())  # flush delayed frames
        out.close()
