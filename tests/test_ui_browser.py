"""The data team's day in the Dagster UI, in a real browser (issue 9).

Starts the real `dagster-webserver` on loopback against the session lakeFS server, then drives
Debian's Chromium headless with Playwright: add a source partition in the "Add a partition"
dialog, launch a raw_pool run for it from the asset page, wait for success, and check that the
asset page shows the partition, the passed checks and the lakeFS commit link. Screenshots go to
`.vcurate/artifacts/ui/`; with VCURATE_UPDATE_DOCS_SCREENSHOT=1 the asset page is also copied to
`docs/ui-asset-page.png` (the README's picture), so ordinary runs leave the work tree clean.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from dagster import DagsterInstance, DagsterRunStatus, RunsFilter
from playwright.sync_api import expect, sync_playwright

from orchestration.dev.lakefs_server import LocalLakeFS
from resources.lakefs import LakeFSResource
from resources.optout import write_empty_registry
from tests.conftest import ACCESS_KEY, SECRET_KEY
from tests.video_factory import write_video
from tests.webserver import dagster_webserver

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / ".vcurate" / "artifacts" / "ui"
SOURCE = "ui-src"
REPOSITORY = "ui-browser"

if not CHROMIUM.exists():
    if os.environ.get("CI") == "true":  # CI installs Chromium (.ci/run): a missing one is a failure
        pytest.fail(f"{CHROMIUM} is missing in CI", pytrace=False)
    pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)", allow_module_level=True)


# No queued run coordinator: runs launched from the UI start at once in a subprocess, so the
# test needs no dagster-daemon (the project's dagster.yaml queues runs, which needs one).
TEST_INSTANCE = {
    "telemetry": {"enabled": False},
    "run_coordinator": {"module": "dagster._core.run_coordinator", "class": "DefaultRunCoordinator"},
}


@pytest.fixture
def webserver(lakefs_server: LocalLakeFS, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A dagster-webserver on a free loopback port; yields (base URL, DAGSTER_HOME)."""
    write_video(tmp_path / "videos" / "one.mp4", seconds=2.0, width=320, height=240)
    registry = tmp_path / "sources.yaml"
    registry.write_text(yaml.safe_dump({"sources": [
        {"id": SOURCE, "kind": "local", "uri": "videos", "license": "CC-BY-4.0"}]}))
    LakeFSResource(endpoint=lakefs_server.endpoint, access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY,
                   repository=REPOSITORY, storage_namespace=f"local://{REPOSITORY}").create_repository()
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml.safe_dump(TEST_INSTANCE))
    endpoint = lakefs_server.endpoint
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "LAKECTL_SERVER_ENDPOINT_URL": endpoint,
        "LAKECTL_CREDENTIALS_ACCESS_KEY_ID": ACCESS_KEY,
        "LAKECTL_CREDENTIALS_SECRET_ACCESS_KEY": SECRET_KEY,
        "VCURATE_LAKEFS_REPOSITORY": REPOSITORY,
        "VCURATE_LAKEFS_STORAGE_NAMESPACE": f"local://{REPOSITORY}",
        "VCURATE_SOURCES": str(registry),
        "VCURATE_POLICY": str(ROOT / "quality_checks" / "policy" / "default_policy.yaml"),
        "VCURATE_OPTOUT": str(write_empty_registry(tmp_path / "optout.yaml")),
        "VCURATE_CACHE_DIR": str(tmp_path / "cache"),
        "VCURATE_S3_ENDPOINT_URL": endpoint,
        "VCURATE_S3_ACCESS_KEY_ID": ACCESS_KEY,
        "VCURATE_S3_SECRET_ACCESS_KEY": SECRET_KEY,
        "VCURATE_S3_REGION": "us-east-1",
    }
    # cwd is the temporary folder, not the project: Dagster's CLI loads `.env` from its cwd
    # OVER the environment, and the project's .env points at the development lakeFS.
    with dagster_webserver(env, tmp_path, tmp_path / "webserver.log") as url:
        yield url, home


def _wait_for_run(home: Path, timeout: float = 120) -> DagsterRunStatus:
    """The status of the one run launched from the UI, once it has finished."""
    with DagsterInstance.from_config(str(home)) as instance:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            runs = instance.get_runs(RunsFilter(tags={"dagster/partition": SOURCE}))
            if runs and runs[0].is_finished:
                assert len(runs) == 1
                return runs[0].status
            time.sleep(1)
    raise AssertionError(f"no finished run for partition {SOURCE!r} after {timeout:.0f} s")


def test_materialize_a_source_from_the_ui(webserver: tuple[str, Path], lakefs_server: LocalLakeFS):
    url, home = webserver
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        page = browser.new_page(viewport={"width": 1440, "height": 1000})
        page.set_default_timeout(30_000)
        try:
            page.goto(f"{url}/assets/raw_pool")
            # First visit on a new instance: the "Join the Dagster community" modal.
            page.get_by_role("button", name="Skip").click()
            page.get_by_role("button", name="Materialize…").click()

            dialog = page.get_by_role("dialog").filter(has_text="Launch runs to materialize raw_pool")
            dialog.get_by_role("button", name="Add a partition").click()
            page.get_by_placeholder("name").fill(SOURCE)
            page.get_by_role("button", name="Save").click()
            launch = dialog.get_by_role("button", name="Launch 1 run")
            launch.wait_for()
            page.screenshot(path=ARTIFACTS / "1-launch-dialog.png")
            launch.click()

            status = _wait_for_run(home)
            assert status == DagsterRunStatus.SUCCESS, (home.parent / "webserver.log").read_text()[-4000:]

            page.goto(f"{url}/assets/raw_pool?view=partitions&partition={SOURCE}")
            commits = f"{lakefs_server.endpoint}/repositories/{REPOSITORY}/commits/"
            commit_link = page.locator(f"a[href^='{commits}']")
            commit_link.first.wait_for()
            assert page.get_by_text(SOURCE).first.is_visible()
            page.screenshot(path=ARTIFACTS / "2-partition.png", full_page=True)

            assert commit_link.first.is_visible()

            page.goto(f"{url}/assets/raw_pool?view=checks")
            heading = page.get_by_text(re.compile(r"^Checks \(\d+\)$"))
            checks = int(re.search(r"\d+", heading.inner_text()).group())
            assert checks >= 5  # raw_pool's five checks, at least
            succeeded = page.get_by_text("Succeeded", exact=True)
            expect(succeeded).to_have_count(checks)  # every check ran in the UI's run and passed
            page.get_by_text("Passed", exact=True).first.wait_for()
            page.screenshot(path=ARTIFACTS / "3-checks.png", full_page=True)
        finally:
            page.screenshot(path=ARTIFACTS / "last.png", full_page=True)
            browser.close()
    if os.environ.get("VCURATE_UPDATE_DOCS_SCREENSHOT") == "1":
        (ROOT / "docs").mkdir(exist_ok=True)
        shutil.copyfile(ARTIFACTS / "2-partition.png", ROOT / "docs" / "ui-asset-page.png")
