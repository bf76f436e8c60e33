"""The course as a website: ``python -m tools.book`` builds it from the committed notebooks (nothing executed,
nothing fetched); a local server on 127.0.0.1 serves it to Debian's Chromium. A screenshot of a chapter goes
to the test's temporary folder, and also to ``$FMNIST_SCREENSHOT_DIR`` when set (how assets/ is refreshed)."""

from __future__ import annotations

import re
import threading
import urllib.request
from functools import partial
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urldefrag, urljoin, urlparse

import pytest
from chromium import CHROMIUM, CHROMIUM_FLAGS, NO_CHROMIUM, screenshot

from fmnist_utils.run_notebooks import APPENDICES
from tools import book

CHAPTERS = [
    "01_data_exploration",
    "02_model_build",
    "03_training",
    "04_compare_mnist_fashion",
    "05_beyond_the_seed",
    "06_train_fast",
    "07_your_own_images",
]


class _Links(HTMLParser):
    """The links (href, src) and element ids of one HTML page."""

    def __init__(self):
        super().__init__()
        self.links, self.ids = [], set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.ids |= {attrs["id"]} if attrs.get("id") else set()
        self.links += [attrs[k] for k in ("href", "src") if attrs.get(k) and tag != "base"]


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):  # the test reads responses, not the server's log
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The built site, served on 127.0.0.1 for as long as the module's tests run."""
    html = book.build(tmp_path_factory.mktemp("book"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(html)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield {"html": html, "url": f"http://127.0.0.1:{server.server_port}/"}
    finally:
        server.shutdown()
        server.server_close()


def _parsed(url: str) -> _Links:
    with urllib.request.urlopen(url, timeout=10) as response:
        page = _Links()
        page.feed(response.read().decode())
    return page


def test_mnists_run_of_03_is_titled_as_mnists(site):
    index = (site["html"] / "index.html").read_text()
    titles = re.findall(r'href="results/seed/03_training_mnist.html">([^<]+)<', index)
    assert titles and all("MNIST run" in title for title in titles), titles


def test_the_site_needs_nothing_from_the_internet(site):
    external = re.compile(r"""<(?:script|link|img)\b[^>]*(?:src|href)=["']https?://|url\(["']?https?://""")
    files = [*site["html"].rglob("*.html"), *site["html"].rglob("*.css")]
    assert len(files) > len(CHAPTERS)
    assert [f.name for f in files if external.search(f.read_text(errors="replace"))] == []


def test_every_internal_link_resolves_and_each_chapter_offers_its_notebook(site):
    base, pages, seen, broken = site["url"], {}, set(), []
    queue = [base + "index.html"]
    while queue:
        url = queue.pop()
        if url in seen:
            continue
        seen.add(url)
        try:
            page = _parsed(url) if url.endswith(".html") else urllib.request.urlopen(url, timeout=10).close()
        except OSError as error:
            broken.append(f"{url}: {error}")
            continue
        if page is not None:
            pages[url] = page
            for link in page.links:
                target = urljoin(url, link)
                if urlparse(target).netloc == urlparse(base).netloc:
                    queue.append(urldefrag(target).url)
    assert broken == []
    missing_anchors = [
        f"{url} -> {link}"
        for url, page in pages.items()
        for link in page.links
        if urldefrag(urljoin(url, link)).fragment
        and urldefrag(urljoin(url, link)).url in pages
        and urldefrag(urljoin(url, link)).fragment not in pages[urldefrag(urljoin(url, link)).url].ids
    ]
    assert missing_anchors == []
    for name in CHAPTERS + [a.removesuffix(".ipynb") for a in APPENDICES]:
        page = pages[f"{base}notebooks/{name}.html"]
        downloads = [urljoin(base, f"notebooks/{link}") for link in page.links if link.endswith(".ipynb")]
        assert f"{base}_sources/notebooks/{name}.ipynb" in downloads, f"{name}'s page offers no .ipynb"


sync_api = None if CHROMIUM is None else pytest.importorskip("playwright.sync_api")


@pytest.mark.browser
@pytest.mark.skipif(sync_api is None, reason=NO_CHROMIUM)
def test_a_reader_finds_the_chapters_and_unfolds_a_solution(site, tmp_path):
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(site["url"] + "index.html")
            listed = page.locator("article .toctree-wrapper a").evaluate_all("a => a.map(x => x.href)")
            order = [Path(urlparse(href).path).stem for href in listed]
            assert order[: len(CHAPTERS) + len(APPENDICES)] == CHAPTERS + [
                Path(a).stem for a in APPENDICES
            ], "the landing page lists the chapters in order, then the appendices"

            page.goto(site["url"] + "notebooks/03_training.html")
            assert "Epoch 30/30" in page.locator("article").inner_text(), "03's page shows its training log"
            solution = page.locator("details.hide").first
            answer = solution.locator(".cell_input")
            assert not answer.is_visible(), "a solution is folded until opened"
            solution.locator("summary").click()
            answer.wait_for(state="visible")
            assert "Solution" in answer.inner_text()

            page.goto(site["url"] + "notebooks/04_compare_mnist_fashion.html")
            heading = page.locator("article h2", has_text="Where the errors are")
            heading.evaluate("h => h.scrollIntoView({block: 'start'})")
            screenshot(page, tmp_path / "book_04_compare_mnist_fashion.png")
        finally:
            browser.close()
