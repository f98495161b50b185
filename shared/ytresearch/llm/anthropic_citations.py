"""Citations on the Messages API: how a ``DocumentBlock`` becomes a custom-content document, and how
the ``citations_delta`` events of a streamed reply become ``CitationDelta`` events.

A custom-content document's ``content`` blocks are used as they are: each is one citable unit, and
the model cites a run of them as ``content_block_location`` (``start_block_index`` to the
exclusive ``end_block_index``, in the ``document_index``-th document of the request, counted over
all messages). In a stream a citation arrives as a ``citations_delta`` inside a text content block,
before the text deltas it supports.
"""

from __future__ import annotations

import logging
from typing import Any, TypeGuard

from ytresearch.ports import CitationDelta, DocumentBlock, ModelRequest

log = logging.getLogger(__name__)


def document_param(block: DocumentBlock) -> dict[str, Any]:
    """A document the model may cite, as the API's custom-content document with citations on.
    Every part goes, blank or not: leaving one out would shift the indexes citations point at
    (the API rejects a blank part; callers leave those out of ``parts``)."""
    param: dict[str, Any] = {
        "type": "document",
        "source": {"type": "content", "content": [{"type": "text", "text": p} for p in block.parts]},
        "citations": {"enabled": True},
    }
    if block.title.strip():
        param["title"] = block.title
    if block.context and block.context.strip():
        param["context"] = block.context
    if block.cache:
        param["cache_control"] = {"type": "ephemeral"}
    return param


class CitationReader:
    """Turns the ``citation`` objects of one request's ``citations_delta`` events into
    ``CitationDelta`` events, checked against the request's documents."""

    __slots__ = ("_part_counts",)

    def __init__(self, request: ModelRequest) -> None:
        # Parts per document, in the order the API numbers documents (over all messages).
        self._part_counts = [
            len(b.parts) for m in request.messages for b in m.content if isinstance(b, DocumentBlock)
        ]

    def read(self, citation: Any) -> CitationDelta | None:
        """The port event for one citation; None for another kind of citation (``char_location``
        and the like, which our documents never produce) or one that points outside the
        request's documents (the API guarantees it does not; the caller gets nothing it cannot
        resolve)."""
        if not isinstance(citation, dict):
            log.debug("ignoring a citation that is not an object: %r", citation)
            return None
        kind = citation.get("type")
        if kind != "content_block_location":
            log.debug("ignoring a %s citation (only content_block_location is used)", kind)
            return None
        index, start, end = (
            citation.get("document_index"),
            citation.get("start_block_index"),
            citation.get("end_block_index"),
        )
        text = citation.get("cited_text")
        if not (_is_int(index) and _is_int(start) and _is_int(end)) or not isinstance(text, str):
            log.warning("dropping a malformed content_block_location citation: %r", citation)
            return None
        if not (0 <= index < len(self._part_counts) and 0 <= start < end <= self._part_counts[index]):
            log.warning(
                "dropping a citation outside the request's documents: document %s, parts %s-%s",
                index,
                start,
                end,
            )
            return None
        return CitationDelta(document_index=index, start_part=start, end_part=end, cited_text=text)


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)
