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

PAGES = {  # asset -> what the page should show once its metadata has rendered
    "clips": "contact_sheet",
    "scored": "route_train",
    "stage_256p": "buckets",
}


def main() -> int:
    load_project_env()
    logs = ROOT / ".vcurate" / "artifacts"
    logs.mkdir(parents=True, exist_ok=True)
    with dagster_webserver(dict(os.environ), ROOT, logs / "docs-webserver.log") as url, \
            sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True)
        page = browser.new_page(viewport={"width": 1440, "height": 1100})
        page.set_default_timeout(60_000)
        for asset, marker in PAGES.items():
            page.goto(f"{url}/assets/{asset}?view=partitions&partition=sample")
            skip = page.get_by_role("button", name="Skip")  # first-visit community modal
            if skip.count():
                skip.click()
            page.get_by_text(marker).first.wait_for()
            page.wait_for_timeout(1500)  # let the inline images decode
            out = ROOT / "docs" / f"ui-demo-{asset}.png"
            page.screenshot(path=out, full_page=True)
            print(out.relative_to(ROOT))
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
