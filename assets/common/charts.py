"""Small PNG charts for materialization metadata: people look at these rather than read them."""

from __future__ import annotations

import base64
import io
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def histograms_png(series: dict[str, list[float]], bins: int = 20, columns: int = 3) -> bytes:
    """One histogram per named series in a grid, as PNG bytes (matplotlib, no display).
    A series with no finite value gets a "no values" panel: an empty partition still charts."""
    import matplotlib

    matplotlib.use("Agg")  # never a GUI backend inside a worker or a test
    from matplotlib import pyplot as plt

    names = list(series)
    rows = max(1, -(-len(names) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.3 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names, strict=False):
        values = np.asarray([v for v in series[name] if v is not None], dtype=np.float64)
        values = values[np.isfinite(values)]
        if len(values) == 0:  # max() of nothing raises; say there is nothing instead
            _no_data(ax, "no values")
        else:
            # a range too small for `bins` finite bins (values equal up to rounding): one bin
            spread = float(values.max() - values.min())
            ax.hist(values, bins=bins if spread > 1e-9 * max(1.0, abs(float(values.max()))) else 1,
                    color="#4C78A8")
        ax.set_title(f"{name} (n={len(values)})", fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    plt.close(fig)
    return buffer.getvalue()


def bar_png(counts: dict[str, int], title: str) -> bytes:
    """A horizontal bar chart of labelled counts, as PNG bytes ("nothing to count" when empty)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    labels = list(counts)
    fig, ax = plt.subplots(figsize=(5, 0.35 * max(3, len(labels)) + 0.6))
    if labels:
        ax.barh(labels[::-1], [counts[k] for k in labels][::-1], color="#F58518")
    else:
        _no_data(ax, "nothing to count")
    ax.set_title(title, fontsize=9)
    ax.tick_params(labelsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    plt.close(fig)
    return buffer.getvalue()


def _no_data(ax: Axes, text: str) -> None:
    """A placeholder panel, so an empty input still gives a picture rather than an error."""
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=9, color="#888888", transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def markdown_image(png: bytes, alt: str) -> str:
    """Inline a PNG in Markdown (the Dagster UI renders data URIs in Markdown metadata). For charts
    of numbers only: a picture of source content goes to lakeFS and is linked (metadata.py)."""
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})"
