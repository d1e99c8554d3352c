"""The run report (infsim/report/html_run.py) in a real browser: headless Chromium loads
report.html offline (every host name unresolvable), every image decodes (naturalWidth > 0),
and nothing is logged to the console or raised as an error.

Chromium is driven from its command line (`--dump-dom` after a virtual-time budget), so no
Python browser package is needed; a probe script is added to a *copy* of the page (the
report itself has no scripts) and writes what it saw into the DOM. Skipped where no
Chromium is installed (`apt-get install chromium` on Debian).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from infsim.report.html_run import write_run_report
from tests.report.test_run_report import _run

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

PROBE = """<script>
window.__errors = [];
window.addEventListener('error', function (e) {
  var t = e.target || {};
  window.__errors.push((t.tagName || 'script') + ': ' + (t.alt || e.message || ''));
}, true);
['error', 'warn'].forEach(function (level) {
  var original = console[level];
  console[level] = function () {
    window.__errors.push('console.' + level + ': ' + [].join.call(arguments, ' '));
    original.apply(console, arguments);
  };
});
window.addEventListener('load', function () {
  var images = [].map.call(document.images, function (i) {
    return {alt: i.alt, width: i.naturalWidth, height: i.naturalHeight, complete: i.complete};
  });
  var svgs = [].map.call(document.querySelectorAll('svg'), function (s) {
    var box = s.getBoundingClientRect();
    return {width: box.width, height: box.height};
  });
  var out = document.createElement('pre');
  out.id = 'infsim-probe';
  out.textContent = JSON.stringify({images: images, svgs: svgs, errors: window.__errors,
    title: document.title, h2: [].map.call(document.querySelectorAll('h2'),
      function (h) { return h.textContent; })});
  document.body.appendChild(out);
});
</script>"""


def chromium() -> str | None:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


def _flags() -> list[str]:
    return [
        "--headless",
        "--no-sandbox",  # containers run as root
        "--disable-gpu",
        "--no-first-run",
        "--host-resolver-rules=MAP * ~NOTFOUND",  # offline: any fetch would fail, loudly
        "--enable-logging=stderr",
        "--v=0",
    ]


def probe(page: Path, tmp: Path) -> tuple[dict, list[str]]:
    """Load a copy of `page` with the probe in headless Chromium: what it saw, and the
    console lines Chromium logged."""
    browser = chromium()
    assert browser is not None
    text = page.read_text(encoding="utf-8")
    assert "<head>" in text
    copy = tmp / "probe.html"
    copy.write_text(text.replace("<head>", "<head>" + PROBE, 1), encoding="utf-8")
    done = subprocess.run(
        [browser, *_flags(), "--virtual-time-budget=10000", "--dump-dom", copy.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    found = re.search(r'<pre id="infsim-probe">(.*?)</pre>', done.stdout, re.S)
    assert found, f"the page did not finish loading in Chromium: {done.stderr[-2000:]}"
    seen = json.loads(
        found.group(1).replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
    )
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    return seen, console


needs_chromium = pytest.mark.skipif(
    chromium() is None,
    reason="no Chromium installed (apt-get install chromium): the browser check of the "
    "run report is skipped; tests/report/test_run_report.py still checks the page's content",
)


@needs_chromium
@pytest.mark.parametrize(
    ("scenario", "extra", "sections"),
    [
        ("quickstart.yaml", ("--set", "workload.synthetic.num_requests=300"), 0),
        ("autoscaling-burst.yaml", (), 1),
    ],
)
def test_report_loads_offline_with_every_image(tmp_path, scenario, extra, sections) -> None:
    run = _run(tmp_path, scenario, *extra)
    page = write_run_report(run)
    seen, console = probe(page, tmp_path)
    assert seen["title"].startswith("infsim run: ")
    assert seen["errors"] == [], seen["errors"]
    assert console == [], console
    assert len(seen["images"]) >= 2
    for image in seen["images"]:
        assert image["complete"], image
        assert image["width"] > 0, image
        assert image["height"] > 0, image
    assert ("Fleet" in seen["h2"]) == bool(sections), seen["h2"]
    for name in ("Headline numbers", "Latency tails", "Over time"):
        assert name in seen["h2"]


@needs_chromium
def test_probe_sees_a_broken_image(tmp_path) -> None:
    """The check is not vacuous: an image that does not decode is caught."""
    page = tmp_path / "page.html"
    page.write_text(
        "<!doctype html><html><head><title>x</title></head><body>"
        '<img alt="broken" src="data:image/png;base64,AAAA"></body></html>'
    )
    seen, _ = probe(page, tmp_path)
    assert seen["images"][0]["width"] == 0
    assert any("broken" in e for e in seen["errors"])
