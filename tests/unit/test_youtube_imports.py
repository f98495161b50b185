"""Importing ytresearch.youtube stays light: the CRUD Lambda parses URLs on its cold-start path."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("youtube_transcript_api", "requests", "httpx", "urllib3")


@pytest.mark.parametrize("module", ["ytresearch.youtube", "ytresearch.youtube.urls"])
def test_import_pulls_in_no_http_or_youtube_library(module: str) -> None:
    code = (
        f"import sys, {module}\n"
        f"loaded = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr


def test_the_check_itself_would_notice_a_heavy_import() -> None:
    # Guards the test above against passing vacuously (e.g. a wrong module name in the check).
    code = (
        "import sys, ytresearch.youtube\n"
        "ytresearch.youtube.YouTubeTranscriptSource().api()\n"
        "assert 'youtube_transcript_api' in sys.modules and 'requests' in sys.modules\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
