// YouTube Research Tool: the browser page. Plain JavaScript modules, no build step, no dependencies.
//
// Safety rules every module keeps:
// - Everything the server returns (titles, channels, transcripts, summaries, model output) is put
//   in the page with textContent / text nodes only. There is no innerHTML anywhere. Artifacts (the
//   model's Markdown) are rendered by markdown.js into elements made with createElement, their text
//   as text nodes: raw HTML in them stays text, and only http(s) links become links.
// - Credentials (an API key, or Cognito tokens) live in sessionStorage (this tab only) and travel
//   only in request headers or, for WebSockets, in the first frame. Never in a URL.
//
// The modules: dom.js (helpers), core.js (state, REST, SSE with reconnects, notices), auth.js
// (keys and the hosted UI's code + PKCE flow), sse.js (the event-stream parser), citations.js
// (links to the moment), markdown.js, chat.js (the conversation), panels.js (actions and
// artifacts), and this file: sign-in, the layout, sessions, videos and the wiring.

import { credentials, finishSignIn, signOutUrl, startSignIn } from "./auth.js";
import {
  ChatSocket,
  forgetAllPending,
  loadHistory,
  loadOlder,
  resumePendingReply,
  sendMessage,
  setBusy,
  TOOLS_MODES,
  toolsMode,
  transport,
} from "./chat.js";
import { momentLink, momentUrl } from "./citations.js";
import { api, followSSE, guard, hooks, notify, notifyError, state, UUID, VIDEO_ID, withDisabled } from "./core.js";
import { $, el, formatOffset, formatTime, humanStage, show, sleep } from "./dom.js";
import { loadActions, loadArtifacts } from "./panels.js";

const TRANSPORT_STORAGE = "ytr.transport";
const TOOLS_STORAGE = "ytr.tools";
const SESSIONS_PAGE_SIZE = 20;
const NARROW = window.matchMedia("(max-width: 760px)");

let pageConfig = { local: true, key_file: ".ytr/dev_api_key", cognito: null };

// --------------------------------------------------------------------------- sign-in

/** How this server signs people in (GET /page-config.json); the defaults when it cannot say. */
async function loadPageConfig() {
  try {
    const response = await fetch("/page-config.json", { cache: "no-store", credentials: "omit" });
    if (!response.ok) return pageConfig;
    const body = await response.json();
    const cognito = body.cognito;
    const usable =
      cognito && typeof cognito === "object" && typeof cognito.client_id === "string" &&
      typeof cognito.scope === "string" && /^https?:\/\/[^/?#]+$/.test(String(cognito.hosted_ui_url));
    return {
      local: Boolean(body.local),
      key_file: typeof body.key_file === "string" ? body.key_file : pageConfig.key_file,
      cognito: usable ? cognito : null,
    };
  } catch {
    return pageConfig;
  }
}

/** The first-run panel: the hosted UI's sign-in when the server offers it, and where a key is. */
function renderSignIn() {
  show($("cognito-sign-in"), Boolean(pageConfig.cognito));
  show($("key-local"), pageConfig.local);
  $("key-file").textContent = pageConfig.key_file;
  $("key-file-again").textContent = pageConfig.key_file;
}

function signedIn() {
  show($("notice"), false);
  $("api-key").value = "";
  $("key-label").textContent = credentials.label();
  show($("sign-in"), false);
  show($("key-status"), true);
  show($("app"), true);
  layout();
}

function signedOut(message) {
  closeSession();
  credentials.clear();
  forgetAllPending();
  $("api-key").value = "";
  show($("sign-in"), true);
  show($("key-status"), false);
  show($("app"), false);
  show($("panel-toggle"), false);
  $("session-list").replaceChildren();
  if (message) notify(message);
  (pageConfig.cognito ? $("cognito-login") : $("api-key")).focus();
}

/** Check the credentials by listing the sessions; true when they work. */
async function start() {
  try {
    const page = await api(`/v1/sessions?limit=${SESSIONS_PAGE_SIZE}`);
    signedIn();
    renderSessions(page, false);
    return true;
  } catch (err) {
    if (err.status !== 401) {
      notifyError(err);
      show($("sign-in"), true);
    }
    return false;
  }
}

function signOut() {
  const viaCognito = credentials.kind === "token" && pageConfig.cognito;
  signedOut("");
  if (viaCognito) location.assign(signOutUrl(pageConfig.cognito));
}

// --------------------------------------------------------------------------- layout

/** Narrow screens: the side panel slides over the conversation, behind the toggle button. */
function layout() {
  const narrow = NARROW.matches;
  show($("panel-toggle"), narrow && !$("app").hidden);
  if (!narrow) setPanel(false);
  else if (!state.sessionId) setPanel(true);
}

function setPanel(open, { focus = false } = {}) {
  const narrow = NARROW.matches;
  const isOpen = narrow && open;
  $("app").dataset.panel = isOpen ? "open" : "closed";
  $("panel-toggle").setAttribute("aria-expanded", String(isOpen));
  $("panel-toggle").textContent = isOpen ? "Close" : "Sessions & videos";
  show($("panel-backdrop"), isOpen && Boolean(state.sessionId));
  if (isOpen && focus) $("side-panel").querySelector("button, input")?.focus();
}

/** The tabs of the main column: the conversation, the artifacts, the actions. */
const TABS = { chat: "chat-panel", artifacts: "artifacts-panel", actions: "actions-panel" };

function setTab(name, { focus = false } = {}) {
  for (const [tab, panel] of Object.entries(TABS)) {
    const selected = tab === name;
    const button = $(`tab-${tab}`);
    button.setAttribute("aria-selected", String(selected));
    button.tabIndex = selected ? 0 : -1;
    show($(panel), selected);
    if (selected && focus) button.focus();
  }
}

function tabKeys(event) {
  const names = Object.keys(TABS);
  const current = names.findIndex((name) => $(`tab-${name}`).getAttribute("aria-selected") === "true");
  let next = null;
  if (event.key === "ArrowRight") next = (current + 1) % names.length;
  else if (event.key === "ArrowLeft") next = (current - 1 + names.length) % names.length;
  else if (event.key === "Home") next = 0;
  else if (event.key === "End") next = names.length - 1;
  if (next === null) return;
  event.preventDefault();
  setTab(names[next], { focus: true });
}

// --------------------------------------------------------------------------- sessions

function sessionItem(session) {
  const button = el(
    "button",
    { type: "button", className: "session-button", dataset: { sessionId: session.id } },
    el("span", { className: "session-title", text: session.title || "Untitled session" }),
    el("span", { className: "session-date", text: formatTime(session.created_at) }),
  );
  button.addEventListener("click", () => openSession(session.id));
  return el("li", { dataset: { sessionId: session.id } }, button);
}

function findSessionItem(sessionId) {
  for (const item of $("session-list").children) if (item.dataset.sessionId === sessionId) return item;
  return null;
}

function renderSessions(page, append) {
  const list = $("session-list");
  const items = page.items.map(sessionItem);
  if (append) list.append(...items);
  else list.replaceChildren(...items);
  state.sessionsCursor = page.next_cursor;
  show($("sessions-more"), Boolean(page.has_more));
  markCurrentSession();
}

function markCurrentSession() {
  for (const button of $("session-list").querySelectorAll(".session-button")) {
    if (button.dataset.sessionId === state.sessionId) button.setAttribute("aria-current", "true");
    else button.removeAttribute("aria-current");
  }
}

async function createSession(title) {
  const session = await api("/v1/sessions", { method: "POST", body: title ? { title } : {} });
  $("session-list").prepend(sessionItem(session));
  // A new session has no videos yet: the side panel stays open (on a phone) to add some, and
  // the video box gets the focus (unless the user has moved it meanwhile).
  const focused = document.activeElement;
  await openSession(session.id, { keepPanel: true });
  const moved = document.activeElement !== focused && document.activeElement !== document.body;
  if (!moved) $("video-url").focus();
}

function showTitle(title) {
  state.sessionTitle = title || "Untitled session";
  $("session-heading").textContent = state.sessionTitle;
  const item = findSessionItem(state.sessionId);
  if (item) item.querySelector(".session-title").textContent = state.sessionTitle;
  document.title = `${state.sessionTitle} · YouTube Research Tool`;
}

function renaming(on) {
  show($("rename-form"), on);
  show($("session-heading"), !on);
  show($("session-tools"), !on);
  if (on) {
    $("rename-input").value = state.sessionTitle;
    $("rename-input").focus();
    $("rename-input").select();
  } else $("session-heading").focus();
}

/** PATCH the open session's title. */
async function renameSession(title) {
  const sessionId = state.sessionId;
  const session = await api(`/v1/sessions/${sessionId}`, { method: "PATCH", body: { title }, signal: state.view?.signal });
  if (state.sessionId !== sessionId) return;
  showTitle(session.title);
  renaming(false);
  notify(`Renamed to "${session.title}".`, "info");
}

function confirmingDelete(on) {
  show($("delete-confirm"), on);
  show($("session-tools"), !on);
  (on ? $("session-delete-cancel") : $("session-delete")).focus();
}

/** DELETE the open session (its messages, requests, artifacts and video links go with it). */
async function deleteSession() {
  const sessionId = state.sessionId;
  const title = state.sessionTitle;
  try {
    await api(`/v1/sessions/${sessionId}`, { method: "DELETE" });
  } catch (err) {
    if (err.status !== 404) throw err; // already gone: take it away all the same
  }
  findSessionItem(sessionId)?.remove();
  if (state.sessionId === sessionId) {
    closeSession();
    history.replaceState(null, "", location.pathname);
    document.title = "YouTube Research Tool";
    layout();
  }
  notify(`Deleted "${title}".`, "info");
  $("session-title").focus();
}

function closeSession() {
  state.view?.abort();
  state.view = null;
  state.socket?.close();
  state.socket = null;
  state.reply = null;
  state.sessionId = null;
  state.sessionTitle = "";
  state.historyCursor = null;
  state.actionsCursor = null;
  state.artifactsCursor = null;
  state.artifactsLoad += 1;
  state.artifactsShown = false;
  state.loading = false;
  state.picked.clear();
  setBusy(false);
  $("video-list").replaceChildren();
  $("messages").replaceChildren();
  $("action-list").replaceChildren();
  show($("actions-more"), false);
  $("artifact-list").replaceChildren();
  $("artifacts-count").textContent = "";
  show($("artifacts-more"), false);
  show($("history-older"), false);
  show($("rename-form"), false);
  show($("session-heading"), true);
  show($("session-tools"), true);
  show($("delete-confirm"), false);
  show($("session-view"), false);
  show($("videos-section"), false);
  show($("empty-state"), true);
  setTab("chat");
  markCurrentSession();
  videosChanged();
}

async function openSession(sessionId, { keepPanel = false } = {}) {
  if (!UUID.test(sessionId)) return;
  closeSession();
  const view = new AbortController();
  state.view = view;
  state.sessionId = sessionId;
  history.replaceState(null, "", `#session=${sessionId}`);
  markCurrentSession();
  let detail;
  try {
    detail = await api(`/v1/sessions/${sessionId}`, { signal: view.signal });
  } catch (err) {
    if (view.signal.aborted) return;
    closeSession();
    history.replaceState(null, "", location.pathname);
    notifyError(err);
    return;
  }
  showTitle(detail.title);
  if (TOOLS_MODES.includes(detail.tools)) $("tools-mode").value = detail.tools;
  show($("empty-state"), false);
  show($("session-view"), true);
  show($("videos-section"), true);
  setPanel(keepPanel);
  for (const video of detail.videos) {
    const card = upsertVideoCard(video);
    if (video.status === "ready") loadVideoDetails(card, video.id, view.signal);
    else if (video.status !== "failed") watchVideo(card, video.id, view.signal);
  }
  videosChanged();
  loadActions().catch(() => {});
  loadArtifacts().catch(() => {});
  // On the WebSocket transport the socket is opened now: it also brings session updates.
  if (transport() === "ws") openSocket();
  state.loading = true;
  $("chat-send").disabled = true;
  await loadHistory(sessionId, view.signal);
  if (state.view === view) {
    state.loading = false;
    $("chat-send").disabled = Boolean(state.reply);
  }
  await resumePendingReply(sessionId, view.signal);
}

function openSocket() {
  if (!state.sessionId) return;
  if (!state.socket) state.socket = new ChatSocket(state.sessionId);
  state.socket.open().catch(() => {});
}

function openFromLocation() {
  const match = /^#session=([0-9a-f-]{36})$/i.exec(location.hash);
  if (match && match[1] !== state.sessionId && credentials.kind) openSession(match[1]);
}

// --------------------------------------------------------------------------- videos

function videoCard(videoId) {
  const pick = el("input", { type: "checkbox", className: "video-pick", dataset: { videoId } });
  pick.setAttribute("aria-label", `Ask about ${videoId}`);
  pick.addEventListener("change", () => {
    if (pick.checked) state.picked.add(videoId);
    else state.picked.delete(videoId);
    updateScope();
  });
  const title = el("h3", { className: "video-title", text: videoId });
  const group = el("span", { className: "video-group" });
  const channel = el("p", { className: "video-channel muted" });
  const link = el("a", {
    className: "video-link",
    href: `https://www.youtube.com/watch?v=${encodeURIComponent(videoId)}`,
    target: "_blank",
    rel: "noopener noreferrer",
    text: "Open on YouTube",
  });
  const progress = el("progress", { className: "progress", max: 5, value: 0 });
  progress.setAttribute("aria-label", `Ingest progress of ${videoId}`);
  const status = el("p", { className: "video-status", text: "Queued", "aria-live": "polite" });
  const retry = el("button", { type: "button", className: "secondary video-retry", text: "Retry", hidden: true });
  const remove = el("button", { type: "button", className: "secondary video-remove", text: "Remove" });
  retry.addEventListener("click", guard(withDisabled(retry, () => retryVideo(videoId))));
  remove.addEventListener("click", guard(withDisabled(remove, () => removeVideo(videoId))));
  const summary = el(
    "details",
    { className: "video-summary", hidden: true },
    el("summary", { text: "Summary" }),
    el("p", { className: "summary-text" }),
  );
  const transcript = el("details", { className: "transcript", hidden: true }, el("summary", { text: "Transcript" }));
  transcript.addEventListener("toggle", () => {
    if (transcript.open && !transcript.dataset.loaded) loadTranscript(card, videoId);
  });
  const card = el(
    "li",
    { className: "video-card", dataset: { videoId, status: "pending" } },
    el("div", { className: "video-head" }, pick, el("div", { className: "video-heading" }, title, group, channel)),
    el("div", { className: "video-progress" }, progress, status),
    el("div", { className: "video-tools" }, link, retry, remove),
    summary,
    transcript,
  );
  return card;
}

function findVideoCard(videoId) {
  for (const card of $("video-list").children) if (card.dataset.videoId === videoId) return card;
  return null;
}

/** Create (or update) the card for a video brief from the API. */
function upsertVideoCard(brief) {
  let card = findVideoCard(brief.id);
  if (!card) {
    card = videoCard(brief.id);
    $("video-list").append(card);
  }
  applyVideo(card, brief);
  return card;
}

function failedText(what) {
  const reason = what.error_message || what.error_code || "unknown error";
  const code = what.error_message && what.error_code ? ` (${what.error_code})` : "";
  return `Failed: ${reason}${code}`;
}

/** The card's buttons and pick box for its status (a failed video can be retried or dismissed). */
function applyStatus(card, status) {
  card.dataset.status = status;
  const failed = status === "failed";
  show(card.querySelector(".video-retry"), failed);
  const remove = card.querySelector(".video-remove");
  remove.textContent = failed ? "Dismiss" : "Remove";
  const pick = card.querySelector(".video-pick");
  pick.disabled = failed;
  if (failed && pick.checked) {
    pick.checked = false;
    state.picked.delete(card.dataset.videoId);
  }
  if (card.isConnected) updateScope();
}

function applyVideo(card, video) {
  if (video.title) card.querySelector(".video-title").textContent = video.title;
  const name = card.querySelector(".video-title").textContent;
  card.querySelector(".video-pick").setAttribute("aria-label", `Ask about ${name}`);
  card.querySelector(".video-link").setAttribute("aria-label", `Open ${name} on YouTube`);
  card.querySelector(".video-remove").setAttribute("aria-label", `Remove ${name} from this session`);
  card.querySelector(".video-retry").setAttribute("aria-label", `Retry adding ${name}`);
  if ("group" in video) card.querySelector(".video-group").textContent = video.group || "";
  card.querySelector(".video-channel").textContent = video.channel || "";
  applyStatus(card, video.status);
  const progress = card.querySelector(".progress");
  const status = card.querySelector(".video-status");
  if (video.status === "ready") {
    progress.value = progress.max;
    status.textContent = "Ready";
  } else if (video.status === "failed") {
    status.textContent = failedText(video);
  } else if (video.status === "processing") {
    status.textContent = "Processing…";
  }
  if ("summary" in video) {
    card.querySelector(".summary-text").textContent = video.summary || "";
    show(card.querySelector(".video-summary"), Boolean(video.summary));
  }
  show(card.querySelector(".transcript"), video.status === "ready");
  if (video.title && card.isConnected) updateScope();
}

function applyJob(card, job) {
  const progress = card.querySelector(".progress");
  const stages = Array.isArray(job.stages) && job.stages.length ? job.stages : null;
  if (stages) progress.max = stages.length;
  const done = Array.isArray(job.stages_done) ? job.stages_done.length : 0;
  progress.value = job.status === "done" ? progress.max : Math.min(done, progress.max);
  card.dataset.job = job.status;
  const status = card.querySelector(".video-status");
  if (job.status === "done") status.textContent = "Ready";
  else if (job.status === "failed") {
    status.textContent = failedText(job);
    applyStatus(card, "failed");
  } else if (job.stage) {
    status.textContent = `${humanStage(job.stage)} (${done + 1} of ${progress.max})`;
    applyStatus(card, "processing");
  } else status.textContent = "Queued";
  // What the last stage found (transcript language and length, summary tokens ...), on hover.
  if (typeof job.message === "string" && job.done) status.title = job.message;
}

/** The video count and the composer's scope line after the list changed. */
function videosChanged() {
  const count = $("video-list").children.length;
  $("videos-count").textContent = count ? String(count) : "";
  for (const id of [...state.picked]) if (!findVideoCard(id)) state.picked.delete(id);
  updateScope();
}

/** What the next question is about: the picked videos, or all of them. */
function updateScope() {
  const cards = [...$("video-list").children].filter((card) => card.dataset.status !== "failed");
  const picked = cards.filter((card) => state.picked.has(card.dataset.videoId));
  const label = $("scope-label");
  if (picked.length) {
    const titles = picked.map((card) => card.querySelector(".video-title").textContent);
    label.textContent = `Asking about ${picked.length} of ${cards.length} videos: ${titles.join(", ")}`;
  } else if (cards.length) {
    label.textContent = `Asking about every video in this session (${cards.length})`;
  } else label.textContent = "No videos yet: add one in the side panel, or ask the assistant to find some";
  $("app").dataset.scope = picked.length ? "picked" : "all";
  show($("scope-clear"), picked.length > 0);
}

function clearPicked() {
  state.picked.clear();
  for (const box of $("video-list").querySelectorAll(".video-pick")) box.checked = false;
  updateScope();
}

/**
 * Show the session's video list as the server has it now (after the assistant or an undo changed
 * it): new videos are added and followed, removed ones dropped, the order is the server's.
 */
async function refreshVideos() {
  const sessionId = state.sessionId;
  const signal = state.view?.signal;
  if (!sessionId) return;
  const page = await api(`/v1/sessions/${sessionId}/videos`, { signal });
  if (state.sessionId !== sessionId) return;
  const videos = Array.isArray(page) ? page : page.items || [];
  const list = $("video-list");
  const wanted = new Set(videos.map((video) => video.id));
  for (const card of [...list.children]) if (!wanted.has(card.dataset.videoId)) card.remove();
  for (const video of videos) {
    const before = findVideoCard(video.id);
    const wasReady = before?.dataset.status === "ready";
    const following = before?.dataset.job === "queued" || before?.dataset.job === "running";
    const card = upsertVideoCard(video);
    list.append(card); // (re)placed in the server's order
    if (video.status === "ready" && !wasReady) loadVideoDetails(card, video.id, signal);
    else if ((!before || (!following && before.dataset.status === "failed")) && video.status !== "ready" && video.status !== "failed") {
      watchVideo(card, video.id, signal);
    }
  }
  videosChanged();
}

const refreshTimers = {};

const refreshers = {
  videos: () => refreshVideos(),
  actions: () => loadActions(),
  artifacts: () => loadArtifacts(),
};

/** Refresh the videos, the actions or the artifacts soon, once for a burst of changes. */
function scheduleRefresh(what) {
  const sessionId = state.sessionId;
  if (!sessionId) return;
  clearTimeout(refreshTimers[what]);
  refreshTimers[what] = setTimeout(() => {
    if (state.sessionId !== sessionId) return;
    refreshers[what]().catch((err) => {
      if (state.sessionId === sessionId) notifyError(err, `Could not refresh the ${what}: `);
    });
  }, 150);
}

/** A `session_update` (WebSocket frame): the session's videos changed somewhere. */
function sessionUpdated(sessionId, update) {
  if (sessionId !== state.sessionId) return;
  if (update.change === "video_ready" && update.video_id) {
    const card = findVideoCard(String(update.video_id));
    if (card) loadVideoDetails(card, String(update.video_id), state.view?.signal);
  }
  scheduleRefresh("videos");
  if (update.change !== "video_ready") scheduleRefresh("actions");
}

/** POST a video (a new one, or a failed one again): its card follows the ingest live. */
async function addVideo(url, onAccepted) {
  const signal = state.view?.signal;
  const result = await api(`/v1/sessions/${state.sessionId}/videos`, { method: "POST", body: { url }, signal });
  onAccepted?.();
  const card = upsertVideoCard(result.video);
  videosChanged();
  if (result.job) applyJob(card, result.job);
  if (result.video.status === "ready") {
    await loadVideoDetails(card, result.video.id, signal);
  } else if (result.job_id) {
    await followJob(card, result.job_id, result.video.id, signal);
  } else {
    await watchVideo(card, result.video.id, signal);
  }
}

/** Retry a failed video: it is added again, which queues a new ingest of it. */
async function retryVideo(videoId) {
  const card = findVideoCard(videoId);
  if (card) {
    card.querySelector(".progress").value = 0;
    card.querySelector(".video-status").textContent = "Queued";
    applyStatus(card, "pending");
  }
  try {
    await addVideo(videoId);
  } catch (err) {
    if (card?.isConnected) card.querySelector(".video-status").textContent = `Retry failed: ${err.message}`;
    if (card) applyStatus(card, "failed");
    throw err;
  }
}

/** Remove a video from the session (DELETE); a failed one is dismissed the same way. */
async function removeVideo(videoId) {
  const sessionId = state.sessionId;
  const card = findVideoCard(videoId);
  const title = card?.querySelector(".video-title").textContent || videoId;
  try {
    await api(`/v1/sessions/${sessionId}/videos/${encodeURIComponent(videoId)}`, { method: "DELETE" });
  } catch (err) {
    if (err.code !== "VIDEO_NOT_FOUND") throw err; // already gone: take the card away all the same
  }
  if (state.sessionId !== sessionId) return;
  const next = card?.nextElementSibling || card?.previousElementSibling;
  card?.remove();
  state.picked.delete(videoId);
  videosChanged();
  notify(`Removed "${title}" from this session.`, "info");
  (next?.querySelector(".video-remove") || $("video-url")).focus();
  scheduleRefresh("actions");
}

async function followJob(card, jobId, videoId, signal) {
  let failed = false;
  try {
    await followSSE(`/v1/jobs/${jobId}/events`, {
      signal,
      onEvent: (event) => {
        let job;
        try {
          job = JSON.parse(event.data);
        } catch {
          return false;
        }
        applyJob(card, job);
        if (event.type === "error") failed = true;
        return event.type === "complete" || event.type === "error";
      },
    });
  } catch (err) {
    if (signal?.aborted) return;
    card.querySelector(".video-status").textContent = `Progress unavailable: ${err.message}`;
  }
  if (!signal?.aborted && !failed) await loadVideoDetails(card, videoId, signal);
}

/** A video still ingesting when the page was opened (its job id is not known): poll it. */
async function watchVideo(card, videoId, signal) {
  while (!signal?.aborted && card.isConnected) {
    try {
      const video = await api(`/v1/videos/${videoId}`, { signal });
      applyVideo(card, video);
      if (video.status === "ready" || video.status === "failed") return;
    } catch (err) {
      if (signal?.aborted) return;
      card.querySelector(".video-status").textContent = err.message;
      return;
    }
    await sleep(1000, signal);
  }
}

async function loadVideoDetails(card, videoId, signal) {
  try {
    applyVideo(card, await api(`/v1/videos/${videoId}`, { signal }));
  } catch (err) {
    if (!signal?.aborted) card.querySelector(".video-status").textContent = err.message;
  }
}

/** The transcript, each line with its moment as a link (opening the video at that second). */
async function loadTranscript(card, videoId) {
  const box = card.querySelector(".transcript");
  box.dataset.loaded = "loading";
  const list = el("ol", { className: "segments" });
  box.append(list);
  try {
    const video = await api(`/v1/videos/${videoId}?include_transcript=true`, { signal: state.view?.signal });
    const segments = video.transcript_segments || [];
    const title = card.querySelector(".video-title").textContent;
    list.replaceChildren(
      ...segments.map((segment) => {
        const at = formatOffset(segment.start);
        const href = momentUrl(videoId, Number(segment.start));
        const stamp = href
          ? momentLink(href, { className: "timestamp", text: at, "aria-label": `Open ${title} at ${at} on YouTube` })
          : el("span", { className: "timestamp", text: at });
        return el("li", { className: "segment" }, stamp, el("span", { className: "segment-text", text: segment.text }));
      }),
    );
    if (!segments.length) list.append(el("li", { className: "muted", text: "No transcript text." }));
    box.dataset.loaded = "yes";
  } catch (err) {
    list.replaceChildren(el("li", { className: "muted", text: err.message }));
    delete box.dataset.loaded;
  }
}

/** The one video a question was about (its video_ids, or the session's only one); else null. */
function onlyVideo(videoIds) {
  if (Array.isArray(videoIds) && videoIds.length) return videoIds.length === 1 ? String(videoIds[0]) : null;
  const cards = $("video-list").children;
  return cards.length === 1 ? cards[0].dataset.videoId : null;
}

function videoTitle(videoId) {
  return findVideoCard(videoId)?.querySelector(".video-title").textContent || videoId;
}

// --------------------------------------------------------------------------- wiring

function wire() {
  Object.assign(hooks, { refresh: scheduleRefresh, sessionUpdated, signedOut, videoTitle, refreshVideos, onlyVideo });

  $("key-form").addEventListener(
    "submit",
    guard(
      withDisabled($("key-save"), async () => {
        const key = $("api-key").value.trim();
        if (!key) return;
        credentials.setKey(key);
        if (await start()) openFromLocation();
      }),
    ),
  );
  $("cognito-login").addEventListener("click", guard(() => startSignIn(pageConfig.cognito)));
  $("key-forget").addEventListener("click", signOut);
  $("notice-close").addEventListener("click", () => show($("notice"), false));

  // The skip link moves the focus without touching the address (which holds the session).
  document.querySelector(".skip-link").addEventListener("click", (event) => {
    event.preventDefault();
    const target = state.sessionId ? $("chat-input") : $("app").hidden ? $("api-key") : $("session-title");
    target.focus();
  });
  $("panel-toggle").addEventListener("click", () => setPanel($("app").dataset.panel !== "open", { focus: true }));
  $("panel-backdrop").addEventListener("click", () => setPanel(false));
  NARROW.addEventListener("change", layout);
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && $("app").dataset.panel === "open" && state.sessionId) {
      setPanel(false);
      $("panel-toggle").focus();
    }
  });

  $("session-form").addEventListener(
    "submit",
    guard(
      withDisabled($("session-create"), async () => {
        const title = $("session-title").value.trim();
        await createSession(title);
        $("session-title").value = "";
      }),
    ),
  );
  $("sessions-more").addEventListener(
    "click",
    guard(async () => {
      const query = `limit=${SESSIONS_PAGE_SIZE}&cursor=${encodeURIComponent(state.sessionsCursor || "")}`;
      renderSessions(await api(`/v1/sessions?${query}`), true);
    }),
  );
  $("session-rename").addEventListener("click", () => renaming(true));
  $("rename-cancel").addEventListener("click", () => renaming(false));
  $("rename-form").addEventListener(
    "submit",
    guard(
      withDisabled($("rename-save"), async () => {
        const title = $("rename-input").value.trim();
        if (title) await renameSession(title);
      }),
    ),
  );
  $("rename-input").addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      event.stopPropagation();
      renaming(false);
    }
  });
  $("session-delete").addEventListener("click", () => confirmingDelete(true));
  $("session-delete-cancel").addEventListener("click", () => confirmingDelete(false));
  $("session-delete-confirm").addEventListener("click", guard(withDisabled($("session-delete-confirm"), deleteSession)));

  for (const name of Object.keys(TABS)) {
    $(`tab-${name}`).addEventListener("click", () => setTab(name));
    $(`tab-${name}`).addEventListener("keydown", tabKeys);
  }

  $("video-form").addEventListener(
    "submit",
    guard(async () => {
      const input = $("video-url");
      const url = input.value.trim();
      if (!url || !state.sessionId) return;
      const id = VIDEO_ID.test(url) ? url : null;
      if (id && findVideoCard(id)?.dataset.status === "failed") {
        input.value = "";
        await retryVideo(id);
        return;
      }
      $("video-add").disabled = true;
      try {
        // The box is cleared once the server accepts the URL; a rejected one stays to be fixed.
        await addVideo(url, () => {
          if (input.value.trim() === url) input.value = "";
          $("video-add").disabled = false;
        });
      } finally {
        $("video-add").disabled = false;
      }
    }),
  );
  $("scope-clear").addEventListener("click", clearPicked);

  $("history-older").addEventListener("click", guard(withDisabled($("history-older"), loadOlder)));
  // A conversation read at its end stays at its end when the window (or the composer) resizes.
  let atEnd = true;
  const box = $("messages");
  box.addEventListener("scroll", () => {
    atEnd = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
  });
  new ResizeObserver(() => {
    if (atEnd) box.scrollTop = box.scrollHeight;
  }).observe(box);

  $("chat-form").addEventListener(
    "submit",
    guard(async () => {
      const text = $("chat-input").value.trim();
      if (text) await sendMessage(text);
    }),
  );
  $("chat-input").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      $("chat-form").requestSubmit();
    } else if (event.key === "Escape" && state.reply) {
      event.preventDefault();
      state.reply.stop();
    }
  });
  $("chat-stop").addEventListener("click", () => state.reply?.stop());

  const savedTransport = sessionStorage.getItem(TRANSPORT_STORAGE);
  if (savedTransport === "ws") $("transport-ws").checked = true;
  for (const radio of document.querySelectorAll('input[name="transport"]')) {
    radio.addEventListener("change", () => {
      sessionStorage.setItem(TRANSPORT_STORAGE, transport());
      if (transport() !== "ws") {
        state.socket?.close();
        state.socket = null;
      } else openSocket();
    });
  }

  const savedTools = sessionStorage.getItem(TOOLS_STORAGE);
  if (TOOLS_MODES.includes(savedTools)) $("tools-mode").value = savedTools;
  $("tools-mode").addEventListener("change", () => sessionStorage.setItem(TOOLS_STORAGE, toolsMode()));

  $("actions-refresh").addEventListener("click", guard(withDisabled($("actions-refresh"), () => loadActions())));
  $("actions-more").addEventListener("click", guard(withDisabled($("actions-more"), () => loadActions(true))));
  $("artifacts-refresh").addEventListener("click", guard(withDisabled($("artifacts-refresh"), () => loadArtifacts())));
  $("artifacts-more").addEventListener("click", guard(withDisabled($("artifacts-more"), () => loadArtifacts(true))));

  window.addEventListener("hashchange", openFromLocation);
}

async function init() {
  wire();
  credentials.load();
  pageConfig = await loadPageConfig();
  credentials.cognito = pageConfig.cognito;
  renderSignIn();
  try {
    // Back from the hosted UI: exchange the one-time code (PKCE) for tokens.
    const tokens = await finishSignIn(pageConfig.cognito);
    if (tokens) credentials.setTokens(tokens);
  } catch (err) {
    notify(err.message);
  }
  if (credentials.kind && (await start())) openFromLocation();
  else if (!credentials.kind) signedOut("");
  document.body.dataset.ready = "yes";
}

init();
