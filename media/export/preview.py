"""A small H.264 preview of one span of a video, for a person to watch (the review page).

Not a training sample: short side `short_side`, fast preset, yuv420p, `+faststart` so a browser
plays it while it loads. Frames are kept by their own timestamps (start_s <= t < end_s).
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av


def encode_preview(source: Path, start_s: float, end_s: float, out: Path, short_side: int = 240) -> int:
    """Write the span to `out` (atomically: a `.part` file renamed at the end); frames written."""
    part = out.with_name(out.name + ".part")
    written = 0
    with av.open(str(source)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate or Fraction(25)
        if start_s > 1.0:  # seek to a keyframe before the span, then decode forward
            container.seek(int((start_s - 1.0) / stream.time_base), stream=stream, backward=True)
        with av.open(str(part), "w", format="mp4", options={"movflags": "+faststart"}) as output:
            encoder = output.add_stream("libx264", rate=rate, options={"preset": "veryfast", "crf": "26"})
            encoder.pix_fmt = "yuv420p"
            for frame in container.decode(stream):
                if frame.pts is None:
                    continue
                t = float(frame.pts * stream.time_base)
                if t < start_s - 1e-6:
                    continue
                if t >= end_s - 1e-6:
                    break
                if written == 0:
                    scale = min(1.0, short_side / min(frame.width, frame.height))
                    encoder.width = max(2, int(frame.width * scale) // 2 * 2)
                    encoder.height = max(2, int(frame.height * scale) // 2 * 2)
                picture = frame.reformat(width=encoder.width, height=encoder.height, format="yuv420p")
                picture.pts = written
                picture.time_base = Fraction(1) / rate
                output.mux(encoder.encode(picture))
                written += 1
            output.mux(encoder.encode(None))
    part.replace(out)
    return written
