"""The browser tests save screenshots of the page's main states; the end of the run says where."""

from __future__ import annotations

import time

import pytest

from tests.e2e.test_browser_page import screenshot_dir

STARTED = time.time()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    folder = screenshot_dir()
    if not folder.is_dir():
        return
    taken = [shot for shot in folder.glob("*.png") if shot.stat().st_mtime >= STARTED]
    if taken:
        terminalreporter.write_sep("-", "browser screenshots")
        terminalreporter.write_line(f"{len(taken)} screenshots of the page in {folder}")
