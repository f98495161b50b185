"""Artifacts: the structured documents (a comparison table across videos, an outline, study
notes) the research agent writes in a session, in Markdown. Revising one adds a version; the
earlier versions stay readable. Used by the agent's tools and by the routes that list, read and
delete them."""

from __future__ import annotations

import uuid
from typing import Any, get_args

from ytresearch.config import Settings
from ytresearch.db.models import Artifact
from ytresearch.errors import ConflictError, InvalidInputError, NotFoundError
from ytresearch.pagination import Cursor
from ytresearch.repository import Repository, Store
from ytresearch.services.sessions import owned_session
from ytresearch.services.users import AuthUser
from ytresearch.views import ArtifactKind, ArtifactOut, ArtifactVersionOut, ArtifactVersionsOut, PageOut

KINDS = get_args(ArtifactKind)


def artifact_not_found(artifact_id: uuid.UUID | str) -> NotFoundError:
    return NotFoundError(f"artifact {artifact_id} not found in this session", code="ARTIFACT_NOT_FOUND")


def _checked(settings: Settings, title: str, content: str) -> tuple[str, str]:
    title = " ".join(title.split())[:200]
    content = content.replace("\x00", "")  # PostgreSQL text cannot hold NUL
    if not title:
        raise InvalidInputError("an artifact needs a title", code="INVALID_ARTIFACT")
    if not content.strip():
        raise InvalidInputError("an artifact needs content", code="INVALID_ARTIFACT")
    if len(content) > settings.artifact_max_chars:
        raise InvalidInputError(
            f"an artifact may hold at most {settings.artifact_max_chars} characters "
            f"(this one has {len(content)})",
            code="ARTIFACT_TOO_LARGE",
        )
    return title, content


def create_artifact(
    store: Store,
    settings: Settings,
    user: AuthUser,
    session_id: uuid.UUID,
    *,
    title: str,
    kind: ArtifactKind,
    content: str,
    request_id: uuid.UUID | None = None,
    call_id: str | None = None,
) -> ArtifactOut:
    """Save a new artifact (version 1) in one of the caller's sessions."""
    title, content = _checked(settings, title, content)
    with store.transaction() as repo:
        owned_session(repo, user, session_id)
        if repo.count_artifacts(session_id) >= settings.artifacts_per_session:
            raise ConflictError(
                f"this session has {settings.artifacts_per_session} artifacts, as many as one may; "
                "delete one or revise an existing one",
                code="ARTIFACT_LIMIT_REACHED",
            )
        artifact, version = repo.add_artifact(
            session_id=session_id,
            kind=kind,
            title=title,
            content=content,
            request_id=request_id,
            call_id=call_id,
        )
        repo.touch_session(session_id)
        return ArtifactOut.of(artifact, version)


def revise_artifact(
    store: Store,
    settings: Settings,
    user: AuthUser,
    session_id: uuid.UUID,
    artifact_id: uuid.UUID,
    *,
    content: str,
    title: str | None = None,
    request_id: uuid.UUID | None = None,
    call_id: str | None = None,
) -> ArtifactOut:
    """Save the next version of one of the session's artifacts (its title kept unless given)."""
    with store.transaction() as repo:
        owned_session(repo, user, session_id)
        artifact = _artifact(repo, session_id, artifact_id, for_update=True)
        title, content = _checked(settings, title or artifact.title, content)
        version = repo.add_artifact_version(
            artifact, title=title, content=content, request_id=request_id, call_id=call_id
        )
        repo.touch_session(session_id)
        return ArtifactOut.of(artifact, version)


def _artifact(
    repo: Repository, session_id: uuid.UUID, artifact_id: uuid.UUID, *, for_update: bool = False
) -> Artifact:
    artifact = repo.get_artifact(session_id, artifact_id, for_update=for_update)
    if artifact is None:
        raise artifact_not_found(artifact_id)
    return artifact


def list_artifacts(
    store: Store, user: AuthUser, session_id: uuid.UUID, limit: int, cursor: str | None
) -> PageOut[ArtifactOut]:
    """The session's artifacts, each at its latest version, latest change first."""
    after = Cursor.decode(cursor) if cursor else None
    with store.transaction() as repo:
        owned_session(repo, user, session_id)
        rows = repo.list_artifacts(session_id, limit + 1, after)
        items = [ArtifactOut.of(artifact, version) for artifact, version in rows]
    has_more = len(items) > limit
    items = items[:limit]
    next_cursor = Cursor(items[-1].updated_at, items[-1].id).encode() if has_more else None
    return PageOut(items=items, next_cursor=next_cursor, has_more=has_more)


def get_artifact(
    store: Store, user: AuthUser, session_id: uuid.UUID, artifact_id: uuid.UUID, version: int | None = None
) -> ArtifactOut:
    """One artifact at its latest version, or at ``version``."""
    with store.transaction() as repo:
        owned_session(repo, user, session_id)
        artifact = _artifact(repo, session_id, artifact_id)
        number = artifact.latest_version if version is None else version
        row = repo.get_artifact_version(artifact.id, number)
        if row is None:
            raise NotFoundError(
                f"artifact {artifact_id} has no version {number} (its latest is {artifact.latest_version})",
                code="ARTIFACT_VERSION_NOT_FOUND",
            )
        return ArtifactOut.of(artifact, row)


def artifact_versions(
    store: Store, user: AuthUser, session_id: uuid.UUID, artifact_id: uuid.UUID
) -> ArtifactVersionsOut:
    with store.transaction() as repo:
        owned_session(repo, user, session_id)
        artifact = _artifact(repo, session_id, artifact_id)
        rows = repo.artifact_versions(artifact.id)
    return ArtifactVersionsOut(
        items=[ArtifactVersionOut(version=v, title=t, chars=n, created_at=at) for v, t, n, at in rows]
    )


def delete_artifact(store: Store, user: AuthUser, session_id: uuid.UUID, artifact_id: uuid.UUID) -> None:
    """Delete an artifact with every version."""
    with store.transaction() as repo:
        owned_session(repo, user, session_id)
        if not repo.delete_artifact(session_id, artifact_id):
            raise artifact_not_found(artifact_id)
        repo.touch_session(session_id)


def follow_draft(drafts: dict[str, dict[str, Any]], event: dict[str, Any]) -> None:
    """Apply one ``artifact`` event's data to a reply's unfinished drafts (by call id): a partial
    one replaces the draft from its offset on; a final or failed one ends it."""
    call_id = str(event.get("call_id") or "")
    if event.get("status") != "partial":
        drafts.pop(call_id, None)
        return
    draft = drafts.setdefault(call_id, {"content": ""})
    offset = event.get("offset")
    kept = str(draft["content"])[: offset if isinstance(offset, int) and offset >= 0 else 0]
    draft.update(
        title=event.get("title"),
        kind=event.get("kind"),
        artifact_id=event.get("artifact_id"),
        content=kept + str(event.get("content") or ""),
    )


def keep_draft(repo: Repository, session_id: uuid.UUID, draft: dict[str, Any]) -> None:
    """Save an artifact shown while being written whose reply ended before it was saved (a cancel,
    an error, a crash): a new version of the artifact it revised, or a new artifact, titled as
    unfinished. Nothing shown is lost; no limit refuses it (what was shown is kept)."""
    content = str(draft.get("content") or "").replace("\x00", "")
    if not content.strip():
        return
    title = (" ".join(str(draft.get("title") or "Untitled").split())[:180] or "Untitled") + " (unfinished)"
    kind = str(draft.get("kind") or "document")
    revised = _uuid(draft.get("artifact_id"))
    artifact = repo.get_artifact(session_id, revised, for_update=True) if revised else None
    if artifact is not None:
        repo.add_artifact_version(artifact, title=title, content=content)
    else:
        repo.add_artifact(
            session_id=session_id, kind=kind if kind in KINDS else "document", title=title, content=content
        )


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None
