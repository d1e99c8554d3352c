"""Screenshots of the run report (infsim/report/html_run.py) in headless Chromium, for
docs/outputs.md: docs/figures/run-report-quickstart.png and run-report-fleet.png.

    python benchmarks/run_report_screenshots.py        # needs chromium on PATH

Runs the two scenarios into a temporary directory, writes their report.html and takes a
1200-px-wide screenshot of each, cropped below the last non-white row.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from infsim.report.html_run import write_run_report

REPO = Path(__file__).resolve().parents[1]
FIGURES = REPO / "docs" / "figures"
SHOTS = {
    "quickstart.yaml": "run-report-quickstart.png",
    "autoscaling-burst.yaml": "run-report-fleet.png",
}


def screenshot(browser: str, page: Path, out: Path, width: int = 1200) -> Path:
    raw = out.with_suffix(".raw.png")
    subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--force-device-scale-factor=1",
            f"--window-size={width},6000",
            f"--screenshot={raw}",
            page.as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=True,
    )
    image = Image.open(raw).convert("RGB")
    rows = np.where((np.asarray(image) < 245).any(axis=(1, 2)))[0]
    bottom = int(rows.max()) + 24 if rows.size else image.height
    image.crop((0, 0, image.width, min(bottom, image.height))).save(out, optimize=True)
    raw.unlink()
    return out


def main() -> int:
    browser = shutil.which("chromium") or shutil.which("google-chrome")
    if browser is None:
        print("no chromium on PATH (apt-get install chromium)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        for scenario, name in SHOTS.items():
            run = Path(tmp) / Path(scenario).stem
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "infsim",
                    "run",
                    str(REPO / "scenarios" / scenario),
                    "-o",
                    str(run),
                    "--quiet",
                ],
                check=True,
                cwd=REPO,
            )
            out = screenshot(browser, write_run_report(run), FIGURES / name)
            print(f"wrote {out.relative_to(REPO)} ({Image.open(out).size[1]} px high)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
