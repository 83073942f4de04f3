"""The benchmark report opened in a real browser (headless Chromium): the headline table
is an HTML table, every figure loads, and the page fits a laptop screen."""

from __future__ import annotations

import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

import hizkit
from hizkit import report
from hizkit.bench import BenchConfig, ClassifierSpec, run_benchmark
from hizkit.testing import ProbeClassifier

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1366,768",  # a laptop screen
]

#: run after the page loads: how many figures decoded, and whether anything is wider
#: than the window; written on <body> for --dump-dom to show
PROBE = """<script>addEventListener("load", () => {
  const imgs = [...document.images];
  const ok = imgs.filter((i) => i.complete && i.naturalWidth > 0).length;
  document.body.dataset.figures = ok + "/" + imgs.length;
  document.body.dataset.fits = String(document.documentElement.scrollWidth <= innerWidth);
});</script>"""


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if found := shutil.which(name):
            return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


class Page(HTMLParser):
    """What the browser's DOM holds: <body> attributes, the first table's cells, images."""

    def __init__(self) -> None:
        super().__init__()
        self.body: dict[str, str | None] = {}
        self.tables: list[list[tuple[str, str]]] = []
        self.images = 0
        self._cell: str | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "body":
            self.body = dict(attrs)
        elif tag == "table":
            self.tables.append([])
        elif tag in ("th", "td") and self.tables:
            self._cell = tag
            self.tables[-1].append((tag, ""))
        elif tag == "img":
            self.images += 1

    def handle_endtag(self, tag):
        if tag in ("th", "td"):
            self._cell = None

    def handle_data(self, data):
        if self._cell:
            tag, text = self.tables[-1][-1]
            self.tables[-1][-1] = (tag, text + data)


class ProbePlugin:
    @hizkit.hookimpl
    def hizkit_register_classifiers(self):
        return [ProbeClassifier]  # reports a history and an embedding: more figures


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from conftest import TinyPlugin, tiny_dataset

    from hizkit.registry import Registry

    registry = Registry(autoload=False)
    registry.register(TinyPlugin(), name="tests.tiny")
    registry.register(ProbePlugin(), name="tests.probe")
    specs = [ClassifierSpec(n, n) for n in ("logistic", "prior", "probe")]
    result = run_benchmark(tiny_dataset(size=32), BenchConfig(specs, runs=2), registry)
    return report.write_run(result, tmp_path_factory.mktemp("report") / "run")


def test_report_renders_in_a_browser(run_dir, tmp_path):
    browser = chromium()
    if browser is None:
        pytest.skip("headless Chromium not found (Debian: apt-get install chromium)")
    page = run_dir / "report.html"
    probed = run_dir / "probed.html"  # beside it, so relative links resolve the same
    probed.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    dom = subprocess.run(
        [browser, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
         probed.as_uri()],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    parsed = Page()
    parsed.feed(dom)
    n_figures = len(list((run_dir / "figures").glob("*.png")))
    assert n_figures >= 5 and parsed.images == n_figures  # learning curve, t-SNE map, ...
    assert parsed.body.get("data-figures") == f"{n_figures}/{n_figures}"  # all decoded
    assert parsed.body.get("data-fits") == "true"  # no sideways scrolling on a laptop
    headline = parsed.tables[0]
    assert ("th", "classifier") in headline and ("th", "acc %") in headline
    assert {("td", label) for label in ("logistic", "prior", "probe")} <= set(headline)
