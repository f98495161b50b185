"""`ytr artifacts` and `ytr artifact show|versions|delete`: the documents the research agent wrote
in a session (comparison tables, outlines, study notes), in Markdown, each kept with its versions.

An artifact's content was written by the model from titles and transcripts strangers wrote: it is
printed (and saved with ``--output``) without escape sequences or other control characters, and
titles are kept to one line.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ytr.errors import EXIT_ERROR, EXIT_OK, CliError
from ytr.render import Output, clean, clean_text, fmt_time, table
from ytr.tool_view import shorten

if TYPE_CHECKING:
    from ytr.client import ApiClient

TITLE_WIDTH = 80


def cmd_artifacts(args: argparse.Namespace, client: ApiClient, out: Output) -> int:
    page = client.list_artifacts(args.session_id, args.limit, args.cursor)
    if out.json_mode:
        out.json(page)  # the API's order: latest change first
        return EXIT_OK
    items = page.get("items") or []
    if not items:
        out.line("no artifacts" + (" on this page" if args.cursor else " in this session yet"))
    else:
        table(
            out,
            ("ARTIFACT", "KIND", "VERSION", "UPDATED", "TITLE"),
            [artifact_row(a, more(out)) for a in items],
        )
        out.line()
        out.line(f"read one: ytr artifact show {args.session_id} ARTIFACT_ID")
    if page.get("has_more") and page.get("next_cursor"):
        out.line()
        out.line(f"more: ytr artifacts {args.session_id} --cursor {page['next_cursor']}")
    return EXIT_OK


def cmd_artifact_show(args: argparse.Namespace, client: ApiClient, out: Output) -> int:
    target = Path(args.output) if args.output and args.output != "-" else None
    if target is not None and not target.is_dir() and target.exists() and not args.force:
        raise _exists(target)  # before downloading anything
    artifact = client.get_artifact(args.session_id, args.artifact_id, args.version)
    document = clean_text(artifact.get("content") or "")
    if document and not document.endswith("\n"):
        document += "\n"
    if target is None:
        if out.json_mode and args.output != "-":
            out.json(artifact)
        else:
            out.write(document)
        return EXIT_OK
    path = target / file_name(artifact) if target.is_dir() else target
    try:
        with path.open("w" if args.force else "x", encoding="utf-8", newline="") as file:
            file.write(document)
    except FileExistsError:
        raise _exists(path) from None
    except OSError as exc:
        raise CliError("WRITE_FAILED", f"cannot write {path}: {exc.strerror or exc}", EXIT_ERROR) from None
    size = len(document.encode("utf-8"))
    version = artifact.get("version")
    return out.result(
        {
            "session_id": args.session_id,
            "artifact_id": artifact.get("id"),
            "version": version,
            "path": str(path),
            "bytes": size,
        },
        f"saved {quoted(artifact.get('title'))} (version {clean(version)}) to {path} ({size} bytes)",
    )


def cmd_artifact_versions(args: argparse.Namespace, client: ApiClient, out: Output) -> int:
    listed = client.artifact_versions(args.session_id, args.artifact_id)
    if out.json_mode:
        out.json(listed)  # newest first
        return EXIT_OK
    items = listed.get("items") or []
    table(
        out,
        ("VERSION", "CREATED", "CHARS", "TITLE"),
        [
            [
                f"v{clean(v.get('version'))}",
                fmt_time(v.get("created_at")),
                chars(v.get("chars")),
                shorten(clean(v.get("title") or ""), TITLE_WIDTH, more(out)),
            ]
            for v in items
        ],
    )
    if len(items) > 1:
        out.line()
        out.line(f"an earlier one: ytr artifact show {args.session_id} {args.artifact_id} --version N")
    return EXIT_OK


def cmd_artifact_delete(args: argparse.Namespace, client: ApiClient, out: Output) -> int:
    client.delete_artifact(args.session_id, args.artifact_id)
    return out.result(
        {"deleted": args.artifact_id, "session_id": args.session_id},
        f"deleted artifact {args.artifact_id} (every version) from session {args.session_id}",
    )


def artifact_row(artifact: dict[str, Any], ellipsis: str = "...") -> list[str]:
    """id, kind, version, when it last changed, title: one line, nothing from the model unclean."""
    return [
        clean(artifact.get("id") or ""),
        clean(artifact.get("kind") or ""),
        f"v{clean(artifact.get('version') or artifact.get('latest_version') or '?')}",
        fmt_time(artifact.get("updated_at")),
        shorten(clean(artifact.get("title") or ""), TITLE_WIDTH, ellipsis),
    ]


def quoted(title: Any) -> str:
    shown = clean(title or "")
    return f'"{shorten(shown, TITLE_WIDTH, "...")}"' if shown else "the artifact"


def chars(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else ""


def more(out: Output) -> str:
    return "…" if out.unicode else "..."


def file_name(artifact: dict[str, Any]) -> str:
    """A plain file name for an artifact saved into a folder: its title's slug (letters, digits,
    dashes), ``-vN`` for an earlier version, ``.md``."""
    slug = re.sub(r"[^a-z0-9]+", "-", clean(artifact.get("title") or "").lower()).strip("-")[:80]
    slug = slug or f"artifact-{re.sub(r'[^A-Za-z0-9]', '', str(artifact.get('id') or ''))[:8]}"
    version, latest = artifact.get("version"), artifact.get("latest_version")
    if isinstance(version, int) and version != latest:
        slug += f"-v{version}"
    return f"{slug}.md"


def _exists(path: Path) -> CliError:
    return CliError("FILE_EXISTS", f"{path} exists: pass --force to overwrite it", EXIT_ERROR)
