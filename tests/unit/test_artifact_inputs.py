"""An artifact's content is kept exactly as the model wrote it (what the person watched being
drafted is what is saved); its other fields are trimmed like every tool input."""

from __future__ import annotations

import uuid

import pytest

from ytresearch.errors import InvalidInputError
from ytresearch.services.agent.inputs import CreateArtifactIn, ReviseArtifactIn, parse_input

DOCUMENT = "    def fold(dough):\n        return dough\n\nThen rest it.\n"


def test_a_document_keeps_its_leading_indent_and_trailing_line_break() -> None:
    created = parse_input("create_artifact", {"title": "  Notes ", "kind": "notes", "content": DOCUMENT})
    revised = parse_input("revise_artifact", {"artifact_id": str(uuid.uuid4()), "content": DOCUMENT})

    assert isinstance(created, CreateArtifactIn) and isinstance(revised, ReviseArtifactIn)
    assert created.content == revised.content == DOCUMENT
    assert created.title == "Notes"  # the other strings are still trimmed


@pytest.mark.parametrize("content", ["", "   ", "\n\t\n"])
def test_a_document_with_no_text_is_refused(content: str) -> None:
    with pytest.raises(InvalidInputError):
        parse_input("create_artifact", {"title": "Notes", "kind": "notes", "content": content})
