"""The research agent's actions in a session: the audit log, and undoing one.

The tools record each call with ``Repository.add_action``; what reverses a call is stored with it
(``AgentAction.undo``), in one of the shapes ``Undo`` reads. Undo runs the reversal and marks the
action undone in one transaction, so it happens once, whole, or not at all.
"""

from __future__ import annotations

import logging
import uuid
from typing import Annotated, Literal

from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from ytresearch.config import Settings
from ytresearch.db.models import utcnow
from ytresearch.errors import ConflictError, NotFoundError
from ytresearch.pagination import Cursor
from ytresearch.repository import Repository, Store
from ytresearch.services.limits import enforce_write_rate
from ytresearch.services.sessions import keyset_page, owned_session
from ytresearch.services.users import AuthUser
from ytresearch.views import ActionOut, PageOut, is_undoable

log = logging.getLogger(__name__)


class UnlinkVideo(BaseModel):
    """Undoes add_video: the video leaves the session again."""

    kind: Literal["unlink_video"]
    video_id: str


class UnlinkVideos(BaseModel):
    """Undoes add_playlist: the videos it added leave the session again."""

    kind: Literal["unlink_videos"]
    video_ids: list[str]


class RelinkVideo(BaseModel):
    """Undoes remove_video: the video comes back at its place, with its language and group."""

    kind: Literal["relink_video"]
    video_id: str
    language: str | None = None
    position: int | None = None
    group: str | None = None


class OrderEntry(BaseModel):
    video_id: str
    position: int | None
    group: str | None


class RestoreOrder(BaseModel):
    """Undoes organize_videos: every video's position and group as they were before."""

    kind: Literal["restore_order"]
    order: list[OrderEntry]


class DeleteArtifact(BaseModel):
    """Undoes create_artifact: the artifact is deleted (already deleted: nothing to do)."""

    kind: Literal["delete_artifact"]
    artifact_id: uuid.UUID


class DropArtifactVersion(BaseModel):
    """Undoes revise_artifact: its version goes, while no later one was written."""

    kind: Literal["drop_artifact_version"]
    artifact_id: uuid.UUID
    version: int


UndoKind = UnlinkVideo | UnlinkVideos | RelinkVideo | RestoreOrder | DeleteArtifact | DropArtifactVersion
Undo = Annotated[UndoKind, Field(discriminator="kind")]
UNDO: TypeAdapter[UndoKind] = TypeAdapter(Undo)


def list_actions(
    store: Store, user: AuthUser, session_id: uuid.UUID, limit: int, cursor: str | None
) -> PageOut[ActionOut]:
    """The agent's actions in one of the caller's sessions, newest first; follow ``next_cursor``
    for older pages."""
    after = Cursor.decode(cursor) if cursor else None
    with store.transaction() as repo:
        owned_session(repo, user, session_id)
        items = [ActionOut.of(a) for a in repo.list_actions(session_id, limit + 1, after)]
    return keyset_page(items, limit)


def undo_action(
    store: Store, settings: Settings, user: AuthUser, session_id: uuid.UUID, action_id: uuid.UUID
) -> ActionOut:
    """Reverse one of the agent's actions and mark it undone, in one transaction.

    404 SESSION_NOT_FOUND / ACTION_NOT_FOUND for anything not the caller's; 409
    ACTION_ALREADY_UNDONE the second time; 409 ACTION_NOT_UNDOABLE for an action with nothing to
    reverse (read-only, failed, refused). What the person changed by hand since is respected:
    undoing an add of a video they removed already changes nothing and succeeds. Putting a removed
    video back is a video add, under the same limits as ``POST .../videos``."""
    with store.transaction() as repo:
        owned_session(repo, user, session_id)
        action = repo.get_action(user.id, session_id, action_id)
        if action is None:
            raise NotFoundError(f"action {action_id} not found", code="ACTION_NOT_FOUND")
        if action.undone_at is not None:
            raise already_undone(action_id)
        if not is_undoable(action):
            raise not_undoable(action_id)
        try:
            undo = UNDO.validate_python(action.undo)
        except ValidationError:
            log.warning("action %s has an undo this version cannot read", action_id)
            raise not_undoable(action_id) from None
        at = utcnow()
        if not repo.mark_action_undone(action.id, at):  # a concurrent undo won
            raise already_undone(action_id)
        reverse(repo, settings, user, session_id, undo)
        repo.touch_session(session_id)
        return ActionOut.of(action).model_copy(update={"undone_at": at, "undoable": False})


def reverse(
    repo: Repository,
    settings: Settings,
    user: AuthUser,
    session_id: uuid.UUID,
    undo: UndoKind,
) -> None:
    """Apply one undo in the caller's transaction."""
    match undo:
        case UnlinkVideo(video_id=video_id):
            repo.unlink_video(user.id, session_id, video_id)  # already gone: nothing to do
        case UnlinkVideos(video_ids=video_ids):
            for video_id in video_ids:
                repo.unlink_video(user.id, session_id, video_id)
        case RelinkVideo():
            if repo.is_linked(session_id, undo.video_id):
                return  # added back by hand since: leave it where it is
            if repo.count_session_videos(session_id) >= settings.max_videos_per_session:
                raise ConflictError(
                    f"a session holds at most {settings.max_videos_per_session} videos; remove one "
                    f"to put {undo.video_id} back",
                    code="TOO_MANY_VIDEOS",
                )
            enforce_write_rate(repo, settings, user, "video")
            repo.relink_video(session_id, undo.video_id, undo.language, undo.position, undo.group)
        case RestoreOrder(order=order):
            repo.restore_video_order(session_id, [(e.video_id, e.position, e.group) for e in order])
        case DeleteArtifact(artifact_id=artifact_id):
            repo.delete_artifact(session_id, artifact_id)
        case DropArtifactVersion(artifact_id=artifact_id, version=version):
            artifact = repo.get_artifact(session_id, artifact_id, for_update=True)
            if artifact is None or artifact.latest_version < version:
                return  # deleted since, or this version is gone already
            if artifact.latest_version > version:
                raise ConflictError(
                    f"artifact {artifact_id} was revised again after version {version}; "
                    "undo the later revision first",
                    code="ARTIFACT_REVISED_SINCE",
                )
            repo.drop_latest_artifact_version(artifact)


def already_undone(action_id: uuid.UUID) -> ConflictError:
    return ConflictError(f"action {action_id} was undone already", code="ACTION_ALREADY_UNDONE")


def not_undoable(action_id: uuid.UUID) -> ConflictError:
    return ConflictError(
        f"action {action_id} cannot be undone: it changed nothing that can be reversed",
        code="ACTION_NOT_UNDOABLE",
    )
