"""The agent's artifacts: each one's row (kind, latest title and version) and its versions."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete, func, literal, select, tuple_

from ytresearch.db.models import Artifact, ArtifactVersion, utcnow
from ytresearch.pagination import Cursor
from ytresearch.repository.base import Queries, changed_rows


class ArtifactQueries(Queries):
    def add_artifact(
        self,
        *,
        session_id: uuid.UUID,
        kind: str,
        title: str,
        content: str,
        request_id: uuid.UUID | None = None,
        call_id: str | None = None,
    ) -> tuple[Artifact, ArtifactVersion]:
        """A new artifact with its first version."""
        now = utcnow()
        artifact = Artifact(
            id=uuid.uuid4(),
            session_id=session_id,
            kind=kind,
            title=title,
            latest_version=1,
            created_at=now,
            updated_at=now,
        )
        self.session.add(artifact)
        self.session.flush()
        return artifact, self._add_version(artifact, title, content, request_id, call_id, now)

    def add_artifact_version(
        self,
        artifact: Artifact,
        *,
        title: str,
        content: str,
        request_id: uuid.UUID | None = None,
        call_id: str | None = None,
    ) -> ArtifactVersion:
        """The next version of ``artifact``, which must have been read ``for_update`` in this
        transaction, so that concurrent revisions get consecutive numbers."""
        now = utcnow()
        artifact.latest_version += 1
        artifact.title = title
        artifact.updated_at = now
        return self._add_version(artifact, title, content, request_id, call_id, now)

    def _add_version(
        self,
        artifact: Artifact,
        title: str,
        content: str,
        request_id: uuid.UUID | None,
        call_id: str | None,
        now: datetime,
    ) -> ArtifactVersion:
        version = ArtifactVersion(
            artifact_id=artifact.id,
            version=artifact.latest_version,
            title=title,
            content=content,
            request_id=request_id,
            call_id=call_id,
            created_at=now,
        )
        self.session.add(version)
        self.session.flush()
        return version

    def drop_latest_artifact_version(self, artifact: Artifact) -> None:
        """Remove the latest version (read ``for_update``), the one before becoming the latest;
        the only version removes the artifact."""
        if artifact.latest_version <= 1:
            self.delete_artifact(artifact.session_id, artifact.id)
            return
        self.session.execute(
            delete(ArtifactVersion).where(
                ArtifactVersion.artifact_id == artifact.id,
                ArtifactVersion.version == artifact.latest_version,
            )
        )
        previous = self.get_artifact_version(artifact.id, artifact.latest_version - 1)
        artifact.latest_version -= 1
        if previous is not None:
            artifact.title = previous.title
            artifact.updated_at = previous.created_at
        self.session.flush()

    def get_artifact(
        self, session_id: uuid.UUID, artifact_id: uuid.UUID, *, for_update: bool = False
    ) -> Artifact | None:
        """The session's artifact, or None (also for another session's)."""
        query = select(Artifact).where(Artifact.id == artifact_id, Artifact.session_id == session_id)
        if for_update:
            query = query.with_for_update()
        return self.session.scalar(query)

    def get_artifact_version(self, artifact_id: uuid.UUID, version: int) -> ArtifactVersion | None:
        return self.session.get(ArtifactVersion, (artifact_id, version))

    def list_artifacts(
        self, session_id: uuid.UUID, limit: int, cursor: Cursor | None
    ) -> list[tuple[Artifact, ArtifactVersion]]:
        """The session's artifacts with their latest versions, latest change first, after
        ``cursor`` (on updated_at and id: ix_artifacts_session_updated)."""
        query = (
            select(Artifact, ArtifactVersion)
            .join(
                ArtifactVersion,
                (ArtifactVersion.artifact_id == Artifact.id)
                & (ArtifactVersion.version == Artifact.latest_version),
            )
            .where(Artifact.session_id == session_id)
        )
        if cursor is not None:
            query = query.where(
                tuple_(Artifact.updated_at, Artifact.id)
                < tuple_(literal(cursor.created_at), literal(cursor.id))
            )
        query = query.order_by(Artifact.updated_at.desc(), Artifact.id.desc()).limit(limit)
        return [(artifact, version) for artifact, version in self.session.execute(query)]

    def artifact_versions(self, artifact_id: uuid.UUID) -> list[tuple[int, str, int, datetime]]:
        """Every version of an artifact, newest first: (version, title, characters, created)."""
        query = (
            select(
                ArtifactVersion.version,
                ArtifactVersion.title,
                func.length(ArtifactVersion.content),
                ArtifactVersion.created_at,
            )
            .where(ArtifactVersion.artifact_id == artifact_id)
            .order_by(ArtifactVersion.version.desc())
        )
        return [(v, t, int(n or 0), at) for v, t, n, at in self.session.execute(query)]

    def count_artifacts(self, session_id: uuid.UUID) -> int:
        query = select(func.count()).select_from(Artifact).where(Artifact.session_id == session_id)
        return int(self.session.scalar(query) or 0)

    def delete_artifact(self, session_id: uuid.UUID, artifact_id: uuid.UUID) -> bool:
        """Delete an artifact and its versions; False when the session has no such artifact."""
        result = self.session.execute(
            delete(Artifact).where(Artifact.id == artifact_id, Artifact.session_id == session_id)
        )
        return changed_rows(result)
