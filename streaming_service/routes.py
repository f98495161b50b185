"""Streaming routes."""

from __future__ import annotations

from fastapi import APIRouter

from ytresearch.web.errors import ERROR_RESPONSES

router = APIRouter(responses=ERROR_RESPONSES)
