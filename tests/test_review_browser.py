"""The review page in a real browser (issue 19): Debian's Chromium headless with Playwright.

A source whose licence needs review goes through raw_pool, clips and scored (real Dagster runs,
real lakeFS); the page plays a clip, approves the street clips and rejects the gradient from the
keyboard (a / r, a reason, Enter), each decision one lakeFS commit; the next materialization
routes the approved clips into stage_256p, which takes reviewed clips only. Screenshots go to
`.vcurate/artifacts/review/`; with VCURATE_UPDATE_DOCS_SCREENSHOT=1 the page is also copied to
`docs/ui-review.png` (the README's picture).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from dagster import materialize
from playwright.sync_api import expect, sync_playwright

from assets.common.layout import reviews_path, tier_path
from orchestration.review_app import ReviewData, create_app, login_from_env, source_files
from tests.conftest import Pipeline
from tests.test_optout import EVERYTHING, films_source
from tests.test_review import REVIEWED, serve

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / ".vcurate" / "artifacts" / "review"

if not CHROMIUM.exists():
    if os.environ.get("CI") == "true":  # CI installs Chromium (.ci/run): a missing one is a failure
        pytest.fail(f"{CHROMIUM} is missing in CI", pytrace=False)
    pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)", allow_module_level=True)


def _materialize(pipeline: Pipeline, registry: Path, selection: list) -> None:
    assert materialize(EVERYTHING, partition_key="films", selection=selection,
                       resources=pipeline.resources(registry), instance=pipeline.instance).success


def test_review_clips_from_the_keyboard(pipeline: Pipeline, workdir: Path):
    registry = films_source(pipeline, workdir, REVIEWED)
    lakefs = pipeline.lakefs
    pipeline.run(registry, "films")
    _materialize(pipeline, registry, EVERYTHING[1:3])  # clips, scored: every clip waits for review
    scored = lakefs.read_table(tier_path("films", "scored")).to_pylist()
    bikes = [r["clip_id"] for r in scored if r["uri"].endswith("bikes.mp4") and r["route"] == "review"]
    gradient = [r["clip_id"] for r in scored if r["uri"].endswith("gradient.mp4") and r["route"] == "review"]
    assert bikes and gradient

    data = ReviewData(lakefs, workdir / "cache", source_files(pipeline.resources(registry)["sources"]))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with serve(create_app(data, login_from_env("127.0.0.1", {}))) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                     args=["--autoplay-policy=no-user-gesture-required"])
        page = browser.new_page(viewport={"width": 1200, "height": 860})
        page.set_default_timeout(60_000)
        try:
            page.goto(f"{url}/")
            for i, clip in enumerate(bikes):
                page.locator(".clip", has_text=clip).click()
                expect(page.locator("#title")).to_contain_text(clip)
                if i == 0:  # the clip plays: the browser decoded frames and the clock moves
                    page.wait_for_function("() => { const v = document.getElementById('player');"
                                           " return v.readyState >= 2 && v.currentTime > 0.2; }")
                    expect(page.locator(".keyframes img").first).to_be_visible()
                page.keyboard.press("a")
                page.keyboard.type("street scene, CC0 terms checked")
                page.keyboard.press("Enter")
                expect(page.locator("#status")).to_contain_text("approved 1 clip(s)")
                expect(page.locator(".clip", has_text=clip)).to_have_count(0)
            page.locator(".clip", has_text=gradient[0]).click()
            page.keyboard.press("r")
            page.keyboard.type("synthetic test pattern")
            page.screenshot(path=ARTIFACTS / "review.png")
            page.keyboard.press("Enter")
            expect(page.locator("#status")).to_contain_text("rejected 1 clip(s)")
        finally:
            page.screenshot(path=ARTIFACTS / "last.png", full_page=True)
            browser.close()

    reviews = lakefs.read_table(reviews_path("films")).to_pylist()
    assert {(r["clip_id"], r["decision"]) for r in reviews} == {
        *((c, "approved") for c in bikes), (gradient[0], "rejected")}
    assert len({r["reviewer"] for r in reviews}) == 1  # the local OS user, from the login

    _materialize(pipeline, registry, EVERYTHING[2:-1])  # scored, captioned, stages
    rows = {r["clip_id"]: r for r in lakefs.read_table(tier_path("films", "scored")).to_pylist()}
    assert rows[gradient[0]]["route"] == "dropped"
    stage = {r["clip_id"] for r in lakefs.read_table(tier_path("films", "stage_256p")).to_pylist()}
    assert stage and stage <= set(bikes)
    if os.environ.get("VCURATE_UPDATE_DOCS_SCREENSHOT") == "1":
        shutil.copyfile(ARTIFACTS / "review.png", ROOT / "docs" / "ui-review.png")
