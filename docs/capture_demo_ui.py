"""Screenshots of the Dagster UI after `./dev demo`, for the README.

    ./dev demo && uv run python docs/capture_demo_ui.py

Starts the real dagster-webserver on the demo's instance (.vcurate/dagster) and project `.env`,
opens each tier's asset page for partition `sample` in Debian's Chromium (headless, Playwright)
and saves full-page PNGs as docs/ui-demo-<asset>.png.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from orchestration.env import load_project_env  # noqa: E402
from tests.webserver import dagster_webserver  # noqa: E402

PAGES = {  # asset -> the metadata entry whose picture is opened (Dagster folds Markdown)
    "clips": "duration_histogram",
    "scored": "score_histograms",
    "stage_256p": "buckets",
}


def main() -> int:
    load_project_env()
    logs = ROOT / ".vcurate" / "artifacts"
    logs.mkdir(parents=True, exist_ok=True)
    with dagster_webserver(dict(os.environ), ROOT, logs / "docs-webserver.log") as url, \
            sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True)
        # tall: the metadata scrolls inside a panel, which a full-page shot does not unroll
        page = browser.new_page(viewport={"width": 1440, "height": 1900})
        page.set_default_timeout(60_000)
        for asset, entry in PAGES.items():
            page.goto(f"{url}/assets/{asset}?view=partitions&partition=sample")
            row = page.locator("tr").filter(has=page.get_by_text(entry, exact=True))
            row.first.wait_for()
            page.wait_for_timeout(2000)  # any first-visit modal appears late
            skip = page.get_by_role("button", name="Skip")  # the "join the community" modal
            if skip.count():
                skip.click()
                page.wait_for_timeout(500)
            shots = [ROOT / "docs" / f"ui-demo-{asset}.png", ROOT / "docs" / f"ui-demo-{asset}-{entry}.png"]
            page.screenshot(path=shots[0])
            row.first.get_by_text("[Show Markdown]").click()
            dialog = page.get_by_role("dialog")
            dialog.locator("img").first.wait_for()
            page.wait_for_timeout(1000)  # let the image decode
            dialog.screenshot(path=shots[1])
            page.keyboard.press("Escape")
            print(*(p.relative_to(ROOT) for p in shots))
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
