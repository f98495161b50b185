// The open session's Actions (the research agent's audit log, with Undo) and Artifacts (the
// documents it wrote, rendered from Markdown as DOM nodes, with their versions and Delete).

import { api, guard, hooks, state, withDisabled } from "./core.js";
import { $, el, formatTime, inputSummary, show, toolError } from "./dom.js";
import { renderMarkdown } from "./markdown.js";

const ACTIONS_PAGE_SIZE = 20;

// --------------------------------------------------------------------------- actions

/** The open session's audit log (GET .../actions), newest first; `append` loads older ones. */
export async function loadActions(append = false) {
  const sessionId = state.sessionId;
  const signal = state.view?.signal;
  if (!sessionId) return;
  let query = `limit=${ACTIONS_PAGE_SIZE}`;
  if (append && state.actionsCursor) query += `&cursor=${encodeURIComponent(state.actionsCursor)}`;
  let page;
  try {
    page = await api(`/v1/sessions/${sessionId}/actions?${query}`, { signal });
  } catch (err) {
    if (signal?.aborted || state.sessionId !== sessionId) return;
    $("actions-empty").textContent = `The actions could not be loaded: ${err.message}`;
    show($("actions-empty"), true);
    throw err;
  }
  if (state.sessionId !== sessionId) return;
  const items = (page.items || []).map(actionItem);
  if (append) $("action-list").append(...items);
  else $("action-list").replaceChildren(...items);
  state.actionsCursor = page.next_cursor || null;
  show($("actions-more"), Boolean(page.next_cursor) && page.has_more !== false);
  $("actions-empty").textContent = "No actions yet: ask the assistant to add, remove or organise videos.";
  show($("actions-empty"), !$("action-list").children.length);
}

function actionItem(action) {
  const result = action.result && typeof action.result === "object" ? action.result : {};
  const status = action.undone_at ? "undone" : String(action.status || "");
  const outcome =
    result.ok === false || (status !== "done" && status !== "undone")
      ? (() => {
          const error = toolError(result);
          return `${error.code || status}: ${error.message || result.summary || ""}`;
        })()
      : String(result.summary || "");
  const item = el(
    "li",
    { className: "action-item", dataset: { actionId: String(action.id), status, tool: String(action.tool || "") } },
    el(
      "div",
      { className: "action-head" },
      el("span", { className: "action-tool", text: String(action.tool || "tool") }),
      el("span", { className: "action-input", text: inputSummary(action.input) }),
      el("span", { className: "action-status", text: status }),
      el("time", { className: "action-time muted", text: formatTime(action.created_at), dateTime: action.created_at }),
    ),
    outcome ? el("p", { className: "action-result", text: outcome }) : null,
  );
  if (action.undoable) {
    const undo = el("button", { type: "button", className: "secondary action-undo", text: "Undo" });
    undo.addEventListener("click", guard(() => undoAction(action, undo)));
    item.querySelector(".action-head").append(undo);
  }
  return item;
}

async function undoAction(action, button) {
  const sessionId = state.sessionId;
  button.disabled = true;
  try {
    await api(`/v1/sessions/${sessionId}/actions/${encodeURIComponent(action.id)}/undo`, { method: "POST" });
  } catch (err) {
    button.disabled = false;
    throw err;
  }
  if (state.sessionId !== sessionId) return;
  // An undone action may have been an artifact's (its creation or a revision).
  await Promise.all([loadActions(), hooks.refreshVideos(), loadArtifacts()]);
}

// --------------------------------------------------------------------------- artifacts

const ARTIFACTS_PAGE_SIZE = 20;
const ARTIFACT_KINDS = new Set(["table", "outline", "notes", "document"]);

export function artifactKind(kind) {
  return ARTIFACT_KINDS.has(kind) ? kind : "document";
}

function artifactPath(sessionId, artifactId) {
  return `/v1/sessions/${sessionId}/artifacts/${encodeURIComponent(artifactId)}`;
}

/** The open session's artifacts (GET .../artifacts), newest-updated first; `append` loads more. */
export async function loadArtifacts(append = false) {
  const sessionId = state.sessionId;
  const signal = state.view?.signal;
  if (!sessionId) return;
  const load = append ? state.artifactsLoad : ++state.artifactsLoad;
  let query = `limit=${ARTIFACTS_PAGE_SIZE}`;
  if (append && state.artifactsCursor) query += `&cursor=${encodeURIComponent(state.artifactsCursor)}`;
  let page;
  try {
    page = await api(`/v1/sessions/${sessionId}/artifacts?${query}`, { signal });
  } catch (err) {
    if (signal?.aborted || state.sessionId !== sessionId || load !== state.artifactsLoad) return;
    if (!$("artifact-list").children.length) {
      $("artifacts-empty").textContent = `The artifacts could not be loaded: ${err.message}`;
      show($("artifacts-empty"), true);
    }
    throw err;
  }
  if (state.sessionId !== sessionId || load !== state.artifactsLoad) return;
  const list = $("artifact-list");
  const shown = new Map([...list.children].map((item) => [item.dataset.artifactId, item]));
  const first = !state.artifactsShown;
  const items = (page.items || []).map((artifact, index) => {
    const before = shown.get(String(artifact.id));
    // Unchanged since it was shown: keep the card as it is (open or not, the version picked).
    if (before && before.dataset.latest === String(artifact.latest_version) && before.dataset.updated === String(artifact.updated_at)) {
      return before;
    }
    const open = before ? before.querySelector(".artifact-card").open : first ? index === 0 && !append : !append;
    return artifactItem(artifact, open);
  });
  if (append) list.append(...items.filter((item) => !item.isConnected));
  else list.replaceChildren(...items);
  state.artifactsShown = true;
  state.artifactsCursor = page.next_cursor || null;
  show($("artifacts-more"), Boolean(page.next_cursor) && page.has_more !== false);
  artifactsChanged();
}

export function artifactsChanged() {
  $("artifacts-empty").textContent = "No artifacts yet: ask for a comparison table of the videos, an outline or study notes.";
  show($("artifacts-empty"), !$("artifact-list").children.length);
  $("artifacts-count").textContent = $("artifact-list").children.length ? String($("artifact-list").children.length) : "";
}

function versionLabel(version, latest) {
  return version === latest || !latest ? `v${version}` : `v${version} of ${latest}`;
}

/** One saved artifact in the panel: a collapsible card with its Markdown, versions and Delete. */
function artifactItem(artifact, open) {
  const id = String(artifact.id);
  const latest = Number(artifact.latest_version) || Number(artifact.version) || 1;
  const version = Number(artifact.version) || latest;
  const kind = artifactKind(artifact.kind);
  const title = el("span", { className: "artifact-title", text: artifact.title || "Untitled artifact" });
  const label = el("span", { className: "artifact-version", text: versionLabel(version, latest) });
  const time = el("time", { className: "artifact-time muted", text: formatTime(artifact.updated_at), dateTime: artifact.updated_at });
  const body = el("div", { className: "artifact-body markdown" }, renderMarkdown(artifact.content));
  const tools = el("div", { className: "artifact-tools" });
  const card = el(
    "details",
    { className: "artifact-card", open, dataset: { kind } },
    el("summary", { className: "artifact-head" }, title, el("span", { className: "artifact-kind", text: kind }), label, time),
    tools,
    body,
  );
  const item = el(
    "li",
    {
      className: "artifact-item",
      dataset: { artifactId: id, version: String(version), latest: String(latest), updated: String(artifact.updated_at || "") },
    },
    card,
  );
  const view = { item, card, title, label, body, latest };
  if (latest > 1) tools.append(versionPicker(view, version));
  tools.append(deleteControl(view));
  return item;
}

/** A select of the artifact's versions (GET .../versions when the card is first opened). */
function versionPicker(view, version) {
  const select = el("select", { className: "artifact-versions" });
  for (let n = view.latest; n >= 1; n--) {
    select.append(el("option", { value: String(n), text: n === view.latest ? `v${n} (latest)` : `v${n}` }));
  }
  select.value = String(version);
  select.addEventListener("change", guard(() => showVersion(view, select)));
  let listed = false;
  const list = () => {
    if (listed || !view.card.open) return;
    listed = true;
    listVersions(view, select).catch(() => {
      listed = false;
    });
  };
  view.card.addEventListener("toggle", list);
  queueMicrotask(list);
  return el("label", { className: "artifact-version-pick" }, el("span", { text: "Version" }), select);
}

async function listVersions(view, select) {
  const sessionId = state.sessionId;
  const answer = await api(`${artifactPath(sessionId, view.item.dataset.artifactId)}/versions`, { signal: state.view?.signal });
  const versions = (answer?.items || []).filter((v) => Number.isInteger(v.version) && v.version >= 1);
  if (!versions.length || state.sessionId !== sessionId) return;
  const chosen = select.value;
  const latest = Math.max(...versions.map((v) => v.version));
  select.replaceChildren(
    ...versions
      .slice()
      .sort((a, b) => b.version - a.version)
      .map((v) => {
        const when = formatTime(v.created_at);
        const text = `v${v.version}${v.version === latest ? " (latest)" : ""}${when ? ` · ${when}` : ""}`;
        return el("option", { value: String(v.version), text, title: String(v.title || "") });
      }),
  );
  select.value = chosen;
}

/** Show another version of the artifact (GET .../artifacts/{id}?version=N) in its card. */
async function showVersion(view, select) {
  const sessionId = state.sessionId;
  const wanted = Number(select.value);
  select.disabled = true;
  try {
    const artifact = await api(`${artifactPath(sessionId, view.item.dataset.artifactId)}?version=${wanted}`, { signal: state.view?.signal });
    if (state.sessionId !== sessionId || Number(select.value) !== wanted) return;
    const version = Number(artifact.version) || wanted;
    view.body.replaceChildren(renderMarkdown(artifact.content));
    view.title.textContent = artifact.title || "Untitled artifact";
    view.label.textContent = versionLabel(version, view.latest);
    view.item.dataset.version = String(version);
    view.card.open = true;
  } finally {
    select.disabled = false;
  }
}

/** Delete, then a second click to confirm (in the page: no browser dialog). */
function deleteControl(view) {
  const remove = el("button", { type: "button", className: "danger artifact-delete", text: "Delete" });
  const yes = el("button", { type: "button", className: "danger artifact-delete-confirm", text: "Delete for good" });
  const no = el("button", { type: "button", className: "secondary artifact-delete-cancel", text: "Keep" });
  const ask = el(
    "span",
    { className: "artifact-confirm", role: "group", hidden: true },
    el("span", { className: "artifact-confirm-text", text: "Delete this artifact and all its versions?" }),
    yes,
    no,
  );
  const asking = (on) => {
    show(ask, on);
    show(remove, !on);
    (on ? no : remove).focus();
  };
  remove.addEventListener("click", () => asking(true));
  no.addEventListener("click", () => asking(false));
  yes.addEventListener("click", guard(withDisabled(yes, () => deleteArtifact(view))));
  return el("span", { className: "artifact-delete-control" }, remove, ask);
}

async function deleteArtifact(view) {
  const sessionId = state.sessionId;
  try {
    await api(artifactPath(sessionId, view.item.dataset.artifactId), { method: "DELETE" });
  } catch (err) {
    if (err.status !== 404) throw err; // already gone: take the card away all the same
  }
  if (state.sessionId !== sessionId) return;
  view.item.remove();
  artifactsChanged();
}
