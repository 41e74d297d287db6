"""What the browser tests share: Debian's Chromium driven by Playwright's sync API (never ``playwright install``),
the two widths pages are photographed at, the check that a page does not scroll sideways on a 390 px phone, a
collector of the console's Content-Security-Policy errors, and a bounded wait for work done outside the browser."""
import shutil
import time
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
DESKTOP, PHONE = {"width": 1280, "height": 900}, {"width": 390, "height": 844}
# Screenshots kept as test artifacts (``var/`` is ignored by git).
SCREENSHOTS = Path(__file__).resolve().parent.parent / "var" / "screenshots"
# The elements that stick out of the viewport outside a scrolling table wrapper (empty: the page fits).
WIDER_THAN_THE_SCREEN = """() => [...document.querySelectorAll('body *')]
  .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1 && !e.closest('.bms-table-wrap, .bms-raw'))
  .slice(0, 5).map(e => e.tagName + (e.id ? '#' + e.id : '') + '.' + [...e.classList].join('.'))"""
SIDEWAYS_SCROLL = "document.documentElement.scrollWidth - document.documentElement.clientWidth"


@contextmanager
def chromium():
    """A headless Chromium; Playwright's sync API keeps an event loop on this thread, so the test that uses it
    sets ``DJANGO_ALLOW_ASYNC_UNSAFE`` for its own ORM calls."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def csp_errors(page) -> list[str]:
    """The console errors about the Content-Security-Policy this page reports from now on (a list that grows)."""
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text)
            if message.type == "error" and "Content Security Policy" in message.text else None)
    return errors


def photograph(page, folder: Path, name: str) -> None:
    """``<name>-desktop.png`` at 1280 px and ``<name>-390.png`` on a phone; at 390 px the page must not scroll
    sideways, and no element may stick out of the screen outside a scrolling table."""
    folder.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size(DESKTOP)
    page.screenshot(path=str(folder / f"{name}-desktop.png"), full_page=True)
    page.set_viewport_size(PHONE)
    overflow, wide = page.evaluate(SIDEWAYS_SCROLL), page.evaluate(WIDER_THAN_THE_SCREEN)
    page.screenshot(path=str(folder / f"{name}-390.png"), full_page=True)
    page.set_viewport_size(DESKTOP)
    assert overflow <= 0 and not wide, f"{name} scrolls sideways at 390 px ({overflow} px) because of {wide}"


def wait_for(predicate, *, timeout: float = 45.0, describe=lambda: ""):
    """``predicate()``'s first truthy value, asked every 0.2 s, for work done outside the browser (a worker, a
    simulator); fails after ``timeout`` seconds with ``describe()`` (e.g. the worker's log)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"condition not met within {timeout}s\n{describe()}")
