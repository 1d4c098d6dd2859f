"""report.html as a reader sees it: opened in headless Chromium, every image decodes, the page logs
no error, and it opens with the answer (its table's header on the first screen of a laptop), then
the claims plot and the gap plot, then the summary of the details.

Chromium is driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``): no network,
no port, and no Python package beyond the suite's own. Where Chromium is missing the browser tests
skip, saying how to install it; CI installs it and sets KLBENCH_REQUIRE_BROWSER=1 (``.ci/run``),
under which a missing browser fails them instead, so a page nobody looked at never passes CI.
"""

import base64
import binascii
import contextlib
import fcntl
import json
import os
import select
import shutil
import struct
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from bench.report.sections import write_report
from tests.builders import (
    ROOT,
    append_result,
    matrix_config,
    new_folder,
    ok_result,
    planned_run,
    write_artifact,
)
from vae_impls import registry

CHROMIUM = Path("/usr/bin/chromium")
REQUIRE_BROWSER = "KLBENCH_REQUIRE_BROWSER"  # "1": a missing browser fails the tests (CI)
WIDTH, HEIGHT = 1400, 3000
FIRST_SCREEN = (1280, 800)  # a laptop's window: what a reader sees before scrolling
# Everything that would reach out to the network or ask a question at first start stays off.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-extensions",
    f"--window-size={WIDTH},{HEIGHT}",
)
TIMEOUT_S = 60
PNG_DATA = "data:image/png;base64,"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"  # the IEND chunk: empty, then its CRC

SPEEDS = {
    ("plain_ae", "keras2"): 40.0,
    ("kl_layer", "keras2"): 45.0,
    ("model_add_loss", "keras2"): 46.0,
    ("notebook_globals", "keras2"): 64.4,
    ("vae_loss_layer", "keras2"): 63.0,
}
# A whole 1x1 PNG, the smallest image the browser has to decode.
DOT_PNG = (
    PNG_DATA + "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9a"
    "wAAAABJRU5ErkJggg=="
)
# Recipes whose first run leaves an artifacts file, so the latent-space pictures are on the page
# too.
WITH_ARTIFACTS = ("kl_layer", "plain_ae")

# Each <img> as the browser decoded it (decode() rejects an image it cannot decode in full), and
# the page's top-level blocks in order.
PAGE_STATE = """Promise.all([...document.images].map(async img => ({
    alt: img.alt, src: img.src, decoded: await img.decode().then(() => true, () => false),
    width: img.naturalWidth, height: img.naturalHeight})))
  .then(images => JSON.stringify({images, blocks: [...document.body.children].map(node => ({
    tag: node.tagName, text: node.textContent.slice(0, 80),
    src: node.querySelector('img')?.src ?? ''}))}))"""


def require_chromium(path: Path) -> None:
    """Nothing where Chromium is at ``path``; else skip the test, or fail it where
    KLBENCH_REQUIRE_BROWSER=1 (CI): there, a page nobody looked at must not pass."""
    if path.exists():
        return
    reason = (
        f"{path} is missing: install Chromium (`apt-get install -y chromium`) to check the "
        "report page in a real browser"
    )
    if os.environ.get(REQUIRE_BROWSER) == "1":
        pytest.fail(f"{reason} ({REQUIRE_BROWSER}=1 requires it)")
    pytest.skip(reason)


class Browser:
    """One headless Chromium, spoken to in DevTools protocol messages (JSON, each ended by a NUL
    byte)."""

    def __init__(self, profile: Path):
        require_chromium(CHROMIUM)
        commands_read, self._commands = os.pipe()
        self._answers, answers_write = os.pipe()
        # Chromium reads the protocol on fd 3 and writes on fd 4; bash puts the pipes there (dash
        # cannot redirect fds above 9). Moved above 9 first, neither end sits on 3 or 4 to be
        # overwritten.
        commands_read, answers_write = (
            _moved_above(fd, 9) for fd in (commands_read, answers_write)
        )
        redirect = f'exec "$0" "$@" 3<&{commands_read} 4>&{answers_write}'
        self.process = subprocess.Popen(
            [
                "/bin/bash",
                "-c",
                redirect,
                str(CHROMIUM),
                *FLAGS,
                f"--user-data-dir={profile}",
                "--remote-debugging-pipe",
                "about:blank",
            ],
            pass_fds=(commands_read, answers_write),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(commands_read)
        os.close(answers_write)
        self._buffer, self._next_id, self.events = b"", 0, []
        try:
            self._attach()
        except BaseException:
            self.close()  # no browser outlives a test that could not use it
            raise

    def _attach(self) -> None:
        targets = self.call("Target.getTargets")["targetInfos"]
        (page,) = [target for target in targets if target["type"] == "page"]
        self.session = self.call("Target.attachToTarget", targetId=page["targetId"], flatten=True)[
            "sessionId"
        ]
        for domain in ("Page", "Runtime", "Log"):
            self.call(f"{domain}.enable", session=True)
        # The window's own frame takes part of --window-size: the page gets exactly WIDTH x HEIGHT.
        self.resize(WIDTH, HEIGHT)

    def resize(self, width: int, height: int) -> None:
        """The page's viewport, exactly ``width`` x ``height`` CSS pixels."""
        self.call(
            "Emulation.setDeviceMetricsOverride",
            session=True,
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )

    def evaluate(self, expression: str):
        """The value of a JavaScript expression on the open page."""
        found = self.call(
            "Runtime.evaluate", session=True, expression=expression, returnByValue=True
        )
        return found["result"].get("value")

    def call(self, method: str, session=False, **params) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = self.session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        answer = self._read_until(lambda reply: reply.get("id") == self._next_id, method)
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer["result"]

    def wait_for(self, event: str) -> None:
        self._read_until(lambda reply: reply.get("method") == event, event)

    def _read_until(self, wanted, what: str) -> dict:
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            while b"\0" in self._buffer:
                raw, self._buffer = self._buffer.split(b"\0", 1)
                reply = json.loads(raw)
                if "method" in reply:
                    self.events.append(reply)
                if wanted(reply):
                    return reply
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._answers], [], [], left)[0]:
                raise TimeoutError(f"Chromium did not answer {what} within {TIMEOUT_S} s")
            chunk = os.read(self._answers, 1 << 20)
            if not chunk:
                raise RuntimeError(
                    f"Chromium exited (status {self.process.poll()}) waiting for {what}"
                )
            self._buffer += chunk

    def open(self, path: Path) -> dict:
        """Load ``path`` and return its images and top-level blocks, once the load event has
        fired."""
        self.events.clear()
        self.call("Page.navigate", session=True, url=path.resolve().as_uri())
        self.wait_for("Page.loadEventFired")
        state = self.call(
            "Runtime.evaluate",
            session=True,
            expression=PAGE_STATE,
            awaitPromise=True,
            returnByValue=True,
        )
        return json.loads(state["result"]["value"])

    def screenshot(self, path: Path) -> Path:
        shot = self.call("Page.captureScreenshot", session=True, format="png")
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def errors(self) -> list:
        """What the page logged as an error since it was opened: console errors, uncaught
        exceptions, and the browser's own error entries (a resource that failed to load, a refused
        request)."""
        found = []
        for event in self.events:
            method, params = event["method"], event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
                words = (str(arg.get("value", arg.get("description"))) for arg in params["args"])
                found.append(f"console.{params['type']}: {' '.join(words)}")
            elif method == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                found.append(
                    "exception: " + details.get("exception", {}).get("description", details["text"])
                )
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                found.append(f"{params['entry']['source']}: {params['entry']['text']}")
        return found

    def close(self) -> None:
        # it may exit before it answers, or have exited already
        with contextlib.suppress(RuntimeError, TimeoutError, OSError):
            self.call("Browser.close")
        try:
            self.process.wait(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._commands)
        os.close(self._answers)


def _moved_above(fd: int, lowest: int) -> int:
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD, lowest + 1)
    os.close(fd)
    return moved


def page_problems(browser: Browser, page: dict) -> list:
    """Every image that is not a whole embedded PNG the browser decoded, and every error the page
    logged. A PNG cut short still shows its top rows and reports its full size: only its bytes
    tell."""
    images = page["images"]
    problems = [
        f"image {image['alt']!r} is not embedded: src {image['src'][:60]!r}"
        for image in images
        if not image["src"].startswith(PNG_DATA)
    ]
    problems += [
        f"image {image['alt']!r} is not a whole PNG"
        for image in images
        if image["src"].startswith(PNG_DATA) and not _whole_png(image["src"][len(PNG_DATA) :])
    ]
    problems += [
        f"image {image['alt']!r} did not decode ({image['width']}x{image['height']} px)"
        for image in images
        if not (image["decoded"] and image["width"] and image["height"])
    ]
    return problems + browser.errors()


def _whole_png(payload: str) -> bool:
    try:
        data = base64.b64decode(payload, validate=True)
    except binascii.Error:
        return False
    return data.startswith(PNG_SIGNATURE) and data.endswith(PNG_END)


def png_size(path: Path) -> tuple:
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE), f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])  # IHDR: width, height


@pytest.fixture(scope="module")
def report_folder(tmp_path_factory) -> Path:
    """A results folder of synthetic runs (3 rounds of each pair, artifacts from round 1) and its
    report."""
    rng = np.random.default_rng(0)
    settings = matrix_config(list(SPEEDS), 3, "page")
    folder, planned = new_folder(
        tmp_path_factory.mktemp("results"), "page", {"config": settings.to_dict()}, settings
    )
    for (recipe, api), ms in SPEEDS.items():
        for repeat in (1, 2, 3):
            run = planned_run(planned, recipe, api, repeat)
            picture = (
                write_artifact(folder.artifact_path(run.run_id), rng)
                if recipe in WITH_ARTIFACTS and repeat == 1
                else None
            )
            result = ok_result(recipe, 150 * rng.normal(1, 0.005), ms, rng, artifacts=picture)
            append_result(folder, run, result)
    write_report(folder.path)
    return folder.path


@pytest.fixture
def browser(tmp_path):
    """A started Chromium; a test asks for it before its report, to skip before building one."""
    opened = Browser(tmp_path / "profile")
    yield opened
    opened.close()


def _embedded(path: Path) -> str:
    return PNG_DATA + base64.b64encode(path.read_bytes()).decode("ascii")


def test_report_page_shows_every_image_and_logs_no_error(browser, report_folder, tmp_path):
    page = browser.open(report_folder / "report.html")
    screenshot = browser.screenshot(tmp_path / "report.png")
    print(f"screenshot: {screenshot}")
    assert page_problems(browser, page) == []
    # every plot and picture the report wrote is on the page: 5 plots, 3 latent-space pictures
    assert len(page["images"]) == 8
    blocks = page["blocks"]
    # the answer: its heading, where it comes from, the table (no error: no notes), the claims'
    # verdicts as a table
    assert [block["tag"] for block in blocks[:6]] == ["H1", "H2", "P", "TABLE", "P", "TABLE"]
    assert blocks[1]["text"] == "Answer" and blocks[3]["text"].split()[:2] == ["recipe", "post"]
    assert [block["src"] for block in blocks[6:8]] == [
        _embedded(report_folder / name) for name in ("claims.png", "gap.png")
    ]
    assert (blocks[8]["tag"], blocks[8]["text"]) == ("H2", "Summary")
    assert png_size(screenshot) == (WIDTH, HEIGHT)


# The top of the answer table's header row, in CSS pixels from the top of the viewport.
ANSWER_HEADER_TOP = """(() => {
    const heading = [...document.querySelectorAll('h2')].find(h => h.textContent === 'Answer');
    let table = heading.nextElementSibling;
    while (table && table.tagName !== 'TABLE') table = table.nextElementSibling;
    return table.querySelector('thead').getBoundingClientRect().top;
})()"""


def test_the_answer_tables_header_is_on_the_first_screen(browser, report_folder):
    browser.resize(*FIRST_SCREEN)
    browser.open(report_folder / "report.html")
    top = browser.evaluate(ANSWER_HEADER_TOP)
    assert 0 < top < FIRST_SCREEN[1], top


def test_a_cut_image_a_missing_one_and_a_console_error_are_each_found(browser, tmp_path):
    page_path = tmp_path / "broken.html"
    # its first 30 bytes: the signature and part of its size chunk
    cut = DOT_PNG[: len(PNG_DATA) + 40]
    page_path.write_text(
        f'<!DOCTYPE html><html><body><img alt="whole" src="{DOT_PNG}">'
        f'<img alt="cut" src="{cut}"><img alt="empty" src="{PNG_DATA}">'
        '<img alt="file" src="no-such-file.png"><script>console.error("drawn badly")</script>'
        "</body></html>"
    )
    problems = page_problems(browser, browser.open(page_path))
    assert not [problem for problem in problems if "'whole'" in problem]
    assert "image 'cut' is not a whole PNG" in problems
    assert "image 'empty' did not decode (0x0 px)" in problems
    assert any(
        problem.startswith("image 'file' is not embedded: src 'file://") for problem in problems
    )
    assert "image 'file' did not decode (0x0 px)" in problems
    assert "console.error: drawn badly" in problems
    assert any(problem.startswith("network: Failed to load resource") for problem in problems), (
        problems
    )


def test_a_missing_browser_skips_with_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.delenv(REQUIRE_BROWSER, raising=False)
    with pytest.raises(pytest.skip.Exception, match="install Chromium"):
        require_chromium(tmp_path / "no-chromium")


def test_a_missing_browser_fails_where_ci_requires_it(tmp_path, monkeypatch):
    monkeypatch.setenv(REQUIRE_BROWSER, "1")
    with pytest.raises(pytest.fail.Exception, match=f"{REQUIRE_BROWSER}=1 requires it"):
        require_chromium(tmp_path / "no-chromium")


def test_a_present_browser_neither_skips_nor_fails(tmp_path, monkeypatch):
    monkeypatch.setenv(REQUIRE_BROWSER, "1")
    present = tmp_path / "chromium"
    present.touch()
    require_chromium(present)


# The committed references' reports at a laptop's first screen: the CPU run of every backend and
# the GPU run without TensorFlow.
REFERENCES = {"cpu": ROOT / "docs" / "reference", "gpu": ROOT / "docs" / "reference-gpu"}
REFERENCE_FILES = ("runs.csv", "ratios.csv", "env.json", "blocks.csv")
# What the first screen shows of the answer: its table's rows below the viewport's bottom, whether
# the page or the table scrolls sideways, the table's headers and the sentence naming the machine.
FIRST_SCREEN_STATE = """(() => {
    const heading = [...document.querySelectorAll('h2')].find(h => h.textContent === 'Answer');
    let table = heading.nextElementSibling;
    while (table && table.tagName !== 'TABLE') table = table.nextElementSibling;
    const rows = [...table.querySelectorAll('tbody tr')];
    const page = document.documentElement;
    return JSON.stringify({
        rows: rows.map(row => row.cells[0].textContent),
        below: rows.filter(row => row.getBoundingClientRect().bottom > innerHeight)
            .map(row => row.cells[0].textContent),
        pageScrolls: page.scrollWidth > page.clientWidth,
        tableScrolls: table.scrollWidth > table.clientWidth,
        headers: [...table.querySelectorAll('thead th')].map(th => th.textContent),
        machine: heading.nextElementSibling.textContent});
})()"""


@pytest.fixture(scope="module", params=sorted(REFERENCES))
def reference_report(request, tmp_path_factory) -> tuple:
    """(cpu or gpu, the report.html of a copy of that committed reference)."""
    require_chromium(CHROMIUM)
    source = REFERENCES[request.param]
    copy = tmp_path_factory.mktemp(request.param) / source.name
    copy.mkdir()
    for name in REFERENCE_FILES:
        if (source / name).is_file():
            shutil.copy(source / name, copy / name)
    write_report(copy)
    return request.param, copy / "report.html"


def test_every_recipes_row_is_on_the_first_screen_without_a_sideways_scroll(
    browser, reference_report, tmp_path
):
    kind, page = reference_report
    browser.resize(*FIRST_SCREEN)
    browser.open(page)
    print(f"screenshot: {browser.screenshot(tmp_path / f'{kind}-first-screen.png')}")
    state = json.loads(browser.evaluate(FIRST_SCREEN_STATE))
    assert state["rows"] == list(registry.RECIPES), state["rows"]
    assert state["below"] == [], f"rows below the first screen: {state['below']}"
    assert not state["pageScrolls"] and not state["tableScrolls"]
    assert len(state["headers"]) <= 7
    machine = state["machine"]
    assert "{" not in machine
    if kind == "gpu":  # no TensorFlow there: its columns are left out
        assert state["headers"] == ["recipe", "post", "Keras 3 JAX", "Keras 3 PyTorch", "why"]
        assert machine.startswith("On one NVIDIA H100 80GB HBM3 beside ")
    else:
        assert state["headers"][2:4] == ["Keras 2", "Keras 3 TF"]
        assert "2 cores, no GPU" in machine
