"""The built book in a real browser: every page opened in headless Chromium (Debian's), through
Selenium and Debian's chromedriver. Run by ``make test-browser`` after ``make book``:

* no console errors, and no request that leaves the local server: the book reads offline
  (MathJax and the widget manager are served from the book itself);
* every ``<audio>`` element loads and reports a duration > 0;
* every image loads (complete, with a natural width > 0);
* the widgets of the interactive chapter render from the state saved at execution;
* every page is at most 5 MB.

Screenshots of the interactive chapter are kept in ``_build/browser/``.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HTML = ROOT / "_build" / "html"
SHOTS = ROOT / "_build" / "browser"
CHROMIUM = os.environ.get("L2I_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("L2I_CHROMEDRIVER", "/usr/bin/chromedriver")
INTERACTIVE = "book/05_listening_to_interpretations.html"
MAX_PAGE_BYTES = 5 * 1024 * 1024

PAGES = sorted(str(p.relative_to(HTML)) for p in (HTML / "book").glob("*.html")) if HTML.is_dir() else []


@pytest.fixture(scope="session")
def server():
    if not PAGES:
        pytest.fail(f"no built pages under {HTML}: run `make book` first")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(HTML)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(scope="session")
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    for path in (CHROMIUM, CHROMEDRIVER):
        if not Path(path).exists():
            pytest.fail(f"{path} not found: install Debian's chromium and chromium-driver (make test-browser does)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--autoplay-policy=no-user-gesture-required", "--window-size=1280,1600",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium')}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def open_page(browser, url: str) -> list[dict]:
    """Load ``url``, wait for it to settle; the console messages it logged."""
    browser.get_log("browser")  # drop what earlier pages logged
    browser.get_log("performance")
    browser.get(url)
    deadline = time.time() + 30
    while browser.execute_script("return document.readyState") != "complete" and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)  # widgets and MathJax render after load
    return browser.get_log("browser")


# chrome-untrusted: is the browser's own new-tab page, asked for once when it starts, not by the book.
LOCAL_SCHEMES = ("data:", "blob:", "about:", "chrome:", "chrome-extension:", "chrome-untrusted:")


def requests_elsewhere(browser, server: str) -> list[str]:
    """URLs the page asked for since it was opened that are not on ``server``."""
    urls = []
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            url = message["params"]["request"]["url"]
            if not url.startswith(server + "/") and not url.startswith(LOCAL_SCHEMES):
                urls.append(url)
    return urls


AUDIO_DURATIONS = """
const done = arguments[arguments.length - 1];
const audios = Array.from(document.querySelectorAll('audio'));
Promise.all(audios.map(a => new Promise(resolve => {
  if (a.readyState >= 1) return resolve(a.duration);
  const t = setTimeout(() => resolve(-1), 15000);
  a.addEventListener('loadedmetadata', () => { clearTimeout(t); resolve(a.duration); });
  a.addEventListener('error', () => { clearTimeout(t); resolve(-2); });
  a.preload = 'metadata'; a.load();
}))).then(done);
"""

IMAGES = """
return Array.from(document.images).map(i => ({src: i.currentSrc.slice(0, 80), ok: i.complete && i.naturalWidth > 0}));
"""


@pytest.mark.parametrize("page", PAGES)
def test_page_plays_shows_and_logs_no_errors(server, browser, page):
    size = (HTML / page).stat().st_size
    assert size <= MAX_PAGE_BYTES, f"{page} is {size / 1e6:.1f} MB: keep pages under 5 MB"
    messages = open_page(browser, f"{server}/{page}")
    errors = [m for m in messages if m["level"] == "SEVERE"]
    assert not errors, f"console errors on {page}: {json.dumps(errors, indent=1)}"
    elsewhere = requests_elsewhere(browser, server)
    assert not elsewhere, f"{page} asked other hosts for {elsewhere}: serve it from the book (_static/vendor)"

    browser.set_script_timeout(60)
    durations = browser.execute_async_script(AUDIO_DURATIONS)
    assert all(d > 0 for d in durations), f"{page}: audio durations {durations} (-1: never loaded, -2: error)"
    images = browser.execute_script(IMAGES)
    assert all(i["ok"] for i in images), f"{page}: images that did not load: {[i['src'] for i in images if not i['ok']]}"
    print(f"{page}: {size / 1e6:.2f} MB, {len(durations)} audio players, {len(images)} images")


def test_widgets_render_from_saved_state(server, browser):
    from selenium.webdriver.common.by import By

    assert INTERACTIVE in PAGES, f"{INTERACTIVE} was not built"
    open_page(browser, f"{server}/{INTERACTIVE}")
    deadline = time.time() + 20
    while not browser.find_elements(By.CSS_SELECTOR, ".widget-slider") and time.time() < deadline:
        time.sleep(0.2)
    labels = [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".widget-label")]
    assert {"clip", "class", "threshold", "mask on", "mask"} <= set(labels), f"explorer controls not rendered (labels: {labels})"
    assert browser.find_elements(By.CSS_SELECTOR, ".widget-dropdown select"), "the class dropdown is missing"
    output = browser.find_element(By.CSS_SELECTOR, ".widget-output")
    assert output.find_elements(By.TAG_NAME, "audio"), "the explorer's players did not render"
    assert output.find_elements(By.TAG_NAME, "img"), "the explorer's figure did not render"
    SHOTS.mkdir(parents=True, exist_ok=True)
    widget = browser.find_element(By.CSS_SELECTOR, ".widget-vbox")
    browser.execute_script("arguments[0].scrollIntoView()", widget)
    widget.screenshot(str(SHOTS / "explorer_widget.png"))
    assert not requests_elsewhere(browser, server)
    browser.save_screenshot(str(SHOTS / "listening_to_interpretations.png"))
    assert (SHOTS / "explorer_widget.png").stat().st_size > 10_000


NOTEBOOK_PAGES = [p for p in PAGES if (ROOT / p).with_suffix(".ipynb").is_file()]


@pytest.mark.parametrize("page", NOTEBOOK_PAGES)
def test_every_chapter_launches_on_colab_and_binder(page):
    html = (HTML / page).read_text()
    notebook = Path(page).with_suffix(".ipynb").as_posix()
    assert "https://colab.research.google.com/github/" in html and f"/{notebook}" in html
    assert "https://mybinder.org/v2/gh/" in html


def test_progress_bars_render_from_saved_state(server, browser):
    from selenium.webdriver.common.by import By

    page = "book/02_learning_the_dictionary.html"  # fits an NMF in the page whatever the cache holds
    open_page(browser, f"{server}/{page}")
    deadline = time.time() + 20
    while not browser.find_elements(By.CSS_SELECTOR, ".widget-hprogress") and time.time() < deadline:
        time.sleep(0.2)
    bars = browser.find_elements(By.CSS_SELECTOR, ".widget-hprogress")
    assert bars, f"no progress bar rendered on {page}"
    # tqdm's bar, from the state saved at execution (as last drawn: tqdm throttles its redraws)
    label = browser.find_element(By.CSS_SELECTOR, ".widget-hbox").get_attribute("textContent")
    assert "NMF" in label and "/200" in label, label


def test_formulas_render_from_the_books_own_mathjax(server, browser):
    page = "book/intro.html"
    open_page(browser, f"{server}/{page}")
    deadline = time.time() + 20
    count = 0
    while time.time() < deadline:
        count = browser.execute_script("return document.querySelectorAll('mjx-container').length")
        if count:
            break
        time.sleep(0.2)
    assert count > 0, f"MathJax typeset no formula on {page}"
    scripts = browser.execute_script("return Array.from(document.scripts).map(s => s.src).filter(s => s.includes('mathjax'))")
    assert scripts and all(s.startswith(server + "/") for s in scripts), scripts
    assert not requests_elsewhere(browser, server)
