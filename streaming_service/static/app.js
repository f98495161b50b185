// YouTube Research Tool: the browser page. Plain JavaScript, no build step, no dependencies.
//
// Safety rules this file keeps:
// - Everything the server returns (titles, channels, transcripts, summaries, model output) is put
//   in the page with textContent / createTextNode only. There is no innerHTML anywhere.
//   Artifacts (the model's Markdown tables and notes) are rendered by renderMarkdown into elements
//   made with createElement, their text as text nodes: raw HTML in them stays text, and only
//   http(s) links become links.
// - The API key lives in sessionStorage (this tab only) and travels only in the X-API-Key header
//   or, for WebSockets, in the first frame. It is never put in a URL.
"use strict";

(() => {
  const KEY_STORAGE = "ytr.apiKey";
  const TRANSPORT_STORAGE = "ytr.transport";
  const PENDING_STORAGE = "ytr.pendingReply";
  const TOOLS_STORAGE = "ytr.tools";
  const TOOLS_MODES = ["auto", "confirm", "off"];
  const MUTATING_TOOLS = new Set(["add_video", "add_playlist", "remove_video", "organize_videos"]);
  const BARE_INPUTS = new Set(["url", "video", "query"]); // a lone one of these is shown as it is
  const HISTORY_PAGE_SIZE = 20;
  const ACTIONS_PAGE_SIZE = 20;
  const SESSIONS_PAGE_SIZE = 20;
  const VIDEO_ID = /^[A-Za-z0-9_-]{11}$/;
  const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

  const $ = (id) => document.getElementById(id);

  // --------------------------------------------------------------------------- DOM helpers

  /** createElement with properties and children; strings become text nodes (never markup). */
  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(props || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (name === "className") node.className = value;
      else if (name === "text") node.textContent = value;
      else if (name === "dataset") Object.assign(node.dataset, value);
      else if (name === "on") for (const [ev, fn] of Object.entries(value)) node.addEventListener(ev, fn);
      else if (name in node && typeof value !== "string") node[name] = value;
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return node;
  }

  function show(node, visible) {
    node.hidden = !visible;
  }

  function formatTime(iso) {
    const date = new Date(iso);
    return Number.isNaN(date.getTime()) ? "" : date.toLocaleString();
  }

  function formatOffset(seconds) {
    const s = Math.max(0, Math.floor(Number(seconds) || 0));
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    const ss = String(s % 60).padStart(2, "0");
    return h ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
  }

  function humanStage(stage) {
    return stage ? String(stage).replace(/_/g, " ") : "";
  }

  /**
   * A tool call's input for people: a lone link, video or query as it is, other flat inputs as
   * key=value, anything nested as JSON. Shown with textContent, like every other server value.
   */
  function inputSummary(input, width = 140) {
    if (!input || typeof input !== "object" || !Object.keys(input).length) return "";
    const entries = Object.entries(input);
    const scalar = (v) => v === null || ["string", "number", "boolean"].includes(typeof v);
    let text;
    if (!Array.isArray(input) && entries.every(([, v]) => scalar(v))) {
      if (entries.length === 1 && BARE_INPUTS.has(entries[0][0])) text = String(entries[0][1]);
      else {
        const value = (v) => (typeof v === "string" && v && !/[\s"=]/.test(v) ? v : JSON.stringify(v));
        text = entries.map(([k, v]) => `${k}=${value(v)}`).join(" ");
      }
    } else text = JSON.stringify(input);
    return text.length > width ? `${text.slice(0, width - 1)}…` : text;
  }

  /** The error of a tool result: {code, message}, from the event or a saved call's content. */
  function toolError(result) {
    if (result.error && typeof result.error === "object") return result.error;
    try {
      const saved = JSON.parse(result.content || "");
      if (saved && saved.error && typeof saved.error === "object") return saved.error;
    } catch {
      // not JSON: fall through
    }
    return { code: "TOOL_FAILED", message: result.summary || "the tool failed" };
  }

  function sleep(ms, signal) {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      signal?.addEventListener("abort", () => { clearTimeout(timer); resolve(); }, { once: true });
    });
  }

  let noticeTimer = null;
  function notify(message, kind = "error") {
    $("notice-text").textContent = message;
    $("notice").dataset.kind = kind;
    show($("notice"), true);
    clearTimeout(noticeTimer);
    if (kind !== "error") noticeTimer = setTimeout(() => show($("notice"), false), 4000);
  }

  // --------------------------------------------------------------------------- state

  const state = {
    key: null,
    sessionId: null,
    sessionsCursor: null,
    historyCursor: null,
    view: null, // AbortController for everything tied to the open session
    reply: null, // the reply being streamed, if any
    socket: null, // ChatSocket for the open session (WebSocket transport)
    actionsCursor: null,
    artifactsCursor: null,
    artifactsLoad: 0, // counts list loads: an older answer arriving late is dropped
    artifactsShown: false, // the open session's artifacts were listed once (the first is opened)
    loading: false, // the open session's history is loading: a question would be wiped by it
  };

  // --------------------------------------------------------------------------- REST

  class ApiError extends Error {
    constructor(status, code, message, details) {
      super(message);
      this.status = status;
      this.code = code;
      this.details = details || {};
    }
  }

  async function errorFrom(response) {
    let body = null;
    try {
      body = await response.json();
    } catch {
      body = null;
    }
    const error = (body && body.error) || {};
    if (response.status === 401) signedOut("Your API key was not accepted. Enter a valid key.");
    return new ApiError(
      response.status,
      error.code || `HTTP_${response.status}`,
      error.message || `The server answered ${response.status}.`,
      error.details,
    );
  }

  async function api(path, { method = "GET", body, signal } = {}) {
    const headers = { "X-API-Key": state.key || "", Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
        cache: "no-store",
      });
    } catch (err) {
      if (signal?.aborted) throw err;
      throw new ApiError(0, "NETWORK_ERROR", "Could not reach the server. Check your connection.");
    }
    if (!response.ok) throw await errorFrom(response);
    if (response.status === 204) return null;
    return response.json();
  }

  // --------------------------------------------------------------------------- SSE over fetch

  // Why fetch() streaming and not EventSource: EventSource cannot send request headers, the server
  // authenticates with the X-API-Key header, and the key must never be put in a URL (URLs end up
  // in logs, history and Referer headers). So this reads text/event-stream from fetch() with the
  // header and does what EventSource does natively: on a dropped connection it waits the server's
  // `retry:` time and reconnects with `Last-Event-ID`, so the server resends only missed events.

  /** Incremental text/event-stream parser (the WHATWG "interpret an event stream" rules). */
  class SSEParser {
    constructor() {
      this.buffer = "";
      this.data = [];
      this.type = "";
      this.lastEventId = "";
      this.retry = null;
      this.started = false;
    }

    /** Feed decoded text; returns the events completed by it. */
    feed(text) {
      this.buffer += text;
      if (!this.started && this.buffer.length) {
        this.started = true;
        if (this.buffer.charCodeAt(0) === 0xfeff) this.buffer = this.buffer.slice(1);
      }
      const events = [];
      const lineEnd = /\r\n|\r|\n/g;
      let start = 0;
      let match;
      while ((match = lineEnd.exec(this.buffer)) !== null) {
        // A trailing "\r" may be the first half of "\r\n": wait for more input.
        if (match[0] === "\r" && match.index === this.buffer.length - 1) break;
        const event = this.line(this.buffer.slice(start, match.index));
        if (event) events.push(event);
        start = match.index + match[0].length;
      }
      this.buffer = this.buffer.slice(start);
      return events;
    }

    line(line) {
      if (line === "") {
        if (!this.data.length) {
          this.type = "";
          return null;
        }
        const event = { type: this.type || "message", data: this.data.join("\n"), id: this.lastEventId };
        this.data = [];
        this.type = "";
        return event;
      }
      if (line.startsWith(":")) return null; // comment (keep-alive ping)
      const colon = line.indexOf(":");
      const field = colon === -1 ? line : line.slice(0, colon);
      let value = colon === -1 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") this.type = value;
      else if (field === "data") this.data.push(value);
      else if (field === "id" && !value.includes("\0")) this.lastEventId = value;
      else if (field === "retry" && /^\d+$/.test(value)) this.retry = Number(value);
      return null;
    }
  }

  /**
   * Follow an SSE URL until `onEvent` returns true (a terminal event). Reconnects like EventSource:
   * after the server's retry delay, with Last-Event-ID. Gives up on 4xx answers (the stream is
   * unknown, foreign or expired) and after repeated failures that make no progress.
   */
  async function followSSE(url, { onEvent, onReconnecting, signal, lastEventId = "", maxFailures = 8 }) {
    let retryMs = 1000;
    let failures = 0;
    let lastId = lastEventId;
    while (!signal?.aborted) {
      const headers = { "X-API-Key": state.key || "", Accept: "text/event-stream" };
      if (lastId) headers["Last-Event-ID"] = lastId;
      let progressed = false;
      try {
        const response = await fetch(url, { headers, signal, cache: "no-store" });
        if (!response.ok) {
          const error = await errorFrom(response);
          if (response.status < 500 && response.status !== 429) throw error;
        } else {
          const parser = new SSEParser();
          parser.lastEventId = lastId;
          const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
          try {
            for (;;) {
              const { value, done } = await reader.read();
              if (done) break;
              for (const event of parser.feed(value)) {
                progressed = true;
                lastId = event.id;
                if (onEvent(event) === true) return;
              }
              if (parser.retry !== null) retryMs = parser.retry;
            }
          } finally {
            reader.cancel().catch(() => {});
          }
          lastId = parser.lastEventId;
        }
      } catch (err) {
        if (signal?.aborted) return;
        if (err instanceof ApiError) throw err;
        // A network error or a dropped connection: reconnect below.
      }
      failures = progressed ? 1 : failures + 1;
      if (failures > maxFailures) {
        throw new ApiError(0, "STREAM_LOST", "Lost the connection to the server; try again later.");
      }
      onReconnecting?.();
      await sleep(retryMs, signal);
    }
  }

  // --------------------------------------------------------------------------- API key

  function storedKey() {
    try {
      return sessionStorage.getItem(KEY_STORAGE);
    } catch {
      return null;
    }
  }

  function signedIn(key) {
    state.key = key;
    sessionStorage.setItem(KEY_STORAGE, key);
    show($("notice"), false);
    $("api-key").value = "";
    $("key-label").textContent = "API key set for this tab";
    show($("key-form"), false);
    show($("key-status"), true);
    show($("app"), true);
  }

  function signedOut(message) {
    closeSession();
    state.key = null;
    sessionStorage.removeItem(KEY_STORAGE);
    sessionStorage.removeItem(PENDING_STORAGE);
    $("api-key").value = "";
    show($("key-form"), true);
    show($("key-status"), false);
    show($("app"), false);
    $("session-list").replaceChildren();
    if (message) notify(message);
    $("api-key").focus();
  }

  async function useKey(key) {
    state.key = key;
    try {
      const page = await api(`/v1/sessions?limit=${SESSIONS_PAGE_SIZE}`);
      signedIn(key);
      renderSessions(page, false);
      return true;
    } catch (err) {
      if (err.status !== 401) {
        notify(err.message);
        state.key = null;
      }
      return false;
    }
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
    await openSession(session.id);
  }

  function closeSession() {
    state.view?.abort();
    state.view = null;
    state.socket?.close();
    state.socket = null;
    state.reply = null;
    state.sessionId = null;
    state.historyCursor = null;
    state.actionsCursor = null;
    state.artifactsCursor = null;
    state.artifactsLoad += 1;
    state.artifactsShown = false;
    state.loading = false;
    setBusy(false);
    $("video-list").replaceChildren();
    $("messages").replaceChildren();
    $("action-list").replaceChildren();
    show($("actions-more"), false);
    $("artifact-list").replaceChildren();
    $("artifacts-count").textContent = "";
    show($("artifacts-more"), false);
    show($("session-view"), false);
    show($("empty-state"), true);
  }

  async function openSession(sessionId) {
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
      if (err.status !== 401) notify(err.message);
      return;
    }
    $("session-heading").textContent = detail.title || "Untitled session";
    if (TOOLS_MODES.includes(detail.tools)) $("tools-mode").value = detail.tools;
    show($("empty-state"), false);
    show($("session-view"), true);
    for (const video of detail.videos) {
      const card = upsertVideoCard(video);
      if (video.status === "ready") loadVideoDetails(card, video.id, view.signal);
      else if (video.status !== "failed") watchVideo(card, video.id, view.signal);
    }
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

  // --------------------------------------------------------------------------- videos

  function videoCard(videoId) {
    const title = el("h4", { className: "video-title", text: videoId });
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
    progress.setAttribute("aria-label", `Progress for ${videoId}`);
    const status = el("p", { className: "video-status", text: "Queued" });
    const summary = el("div", { className: "video-summary" });
    const transcript = el("details", { className: "transcript" }, el("summary", { text: "Transcript" }));
    transcript.hidden = true;
    transcript.addEventListener("toggle", () => {
      if (transcript.open && !transcript.dataset.loaded) loadTranscript(card, videoId);
    });
    const card = el(
      "li",
      { className: "video-card", dataset: { videoId, status: "pending" } },
      el("div", { className: "video-head" }, title, link),
      group,
      channel,
      el("div", { className: "video-progress" }, progress, status),
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

  function applyVideo(card, video) {
    if (video.title) card.querySelector(".video-title").textContent = video.title;
    if ("group" in video) card.querySelector(".video-group").textContent = video.group || "";
    card.querySelector(".video-channel").textContent = video.channel || "";
    card.dataset.status = video.status;
    const progress = card.querySelector(".progress");
    const status = card.querySelector(".video-status");
    if (video.status === "ready") {
      progress.value = progress.max;
      status.textContent = "Ready";
    } else if (video.status === "failed") {
      status.textContent = `Failed: ${video.error_message || video.error_code || "unknown error"}`;
    } else if (video.status === "processing") {
      status.textContent = "Processing…";
    }
    if ("summary" in video) {
      const summary = card.querySelector(".video-summary");
      if (video.summary) {
        summary.replaceChildren(
          el("h5", { text: "Summary" }),
          el("p", { className: "summary-text", text: video.summary }),
        );
      } else {
        summary.replaceChildren();
      }
    }
    card.querySelector(".transcript").hidden = video.status !== "ready";
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
      status.textContent = `Failed: ${job.error_message || job.error_code || "unknown error"}`;
      card.dataset.status = "failed";
    } else if (job.stage) {
      status.textContent = `${humanStage(job.stage)} (${done + 1} of ${progress.max})`;
      card.dataset.status = "processing";
    } else status.textContent = "Queued";
    // What the last stage found (transcript language and length, summary tokens ...), on hover.
    if (typeof job.message === "string" && job.done) status.title = job.message;
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
      const card = upsertVideoCard(video);
      list.append(card); // (re)placed in the server's order
      if (video.status === "ready" && !wasReady) loadVideoDetails(card, video.id, signal);
      else if (!before && video.status !== "ready" && video.status !== "failed") watchVideo(card, video.id, signal);
    }
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
        if (err?.name !== "AbortError" && err?.status !== 401 && state.sessionId === sessionId) {
          notify(`Could not refresh the ${what}: ${err.message}`);
        }
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

  async function addVideo(url, onAccepted) {
    const sessionId = state.sessionId;
    const signal = state.view?.signal;
    const result = await api(`/v1/sessions/${sessionId}/videos`, { method: "POST", body: { url }, signal });
    onAccepted?.();
    const card = upsertVideoCard(result.video);
    if (result.job) applyJob(card, result.job);
    if (result.video.status === "ready") {
      await loadVideoDetails(card, result.video.id, signal);
    } else if (result.job_id) {
      await followJob(card, result.job_id, result.video.id, signal);
    } else {
      await watchVideo(card, result.video.id, signal);
    }
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
    while (!signal?.aborted) {
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

  async function loadTranscript(card, videoId) {
    const box = card.querySelector(".transcript");
    box.dataset.loaded = "loading";
    const list = el("ol", { className: "segments" });
    box.append(list);
    try {
      const video = await api(`/v1/videos/${videoId}?include_transcript=true`, { signal: state.view?.signal });
      const segments = video.transcript_segments || [];
      list.replaceChildren(
        ...segments.map((segment) =>
          el(
            "li",
            { className: "segment" },
            el("span", { className: "timestamp", text: formatOffset(segment.start) }),
            el("span", { className: "segment-text", text: segment.text }),
          ),
        ),
      );
      if (!segments.length) list.append(el("li", { className: "muted", text: "No transcript text." }));
      box.dataset.loaded = "yes";
    } catch (err) {
      list.replaceChildren(el("li", { className: "muted", text: err.message }));
      delete box.dataset.loaded;
    }
  }

  // --------------------------------------------------------------------------- citations

  // A timestamp the model wrote in its text: [mm:ss] or [h:mm:ss].
  const TIMESTAMP = /\[(?:(\d{1,2}):)?(\d{1,2}):(\d{2})\]/g;

  /** mm:ss, or h:mm:ss from one hour on (as the server writes its timestamps). */
  function clock(seconds) {
    const s = Math.floor(seconds);
    const pad = (n) => String(n).padStart(2, "0");
    const h = Math.floor(s / 3600);
    const rest = `${pad(Math.floor((s % 3600) / 60))}:${pad(s % 60)}`;
    return h ? `${h}:${rest}` : rest;
  }

  /**
   * The video at a second, built here from a checked id and start: the server's `url` is never
   * used as a link. null when either is not sound.
   */
  function momentUrl(videoId, start) {
    if (typeof videoId !== "string" || !VIDEO_ID.test(videoId)) return null;
    if (typeof start !== "number" || !Number.isFinite(start) || start < 0) return null;
    return `https://www.youtube.com/watch?v=${videoId}&t=${Math.floor(start)}`;
  }

  /** A link that opens a moment of a video in a new tab, told nothing about this page. */
  function momentLink(href, props, ...children) {
    return el("a", { ...props, href, target: "_blank", rel: "noopener noreferrer" }, ...children);
  }

  /**
   * The sources of one reply: its citations numbered in the order of first use, one number per
   * (video, start), and the "Sources" list shown under the reply. Titles and quotes are text.
   */
  class Sources {
    constructor() {
      this.byMoment = new Map(); // "video|second" -> {number, videoId, title, at, href}
      this.videos = new Set(); // the linkable videos cited
      this.list = el("ol", { className: "sources-list" });
      this.node = el("section", { className: "sources", hidden: true }, el("h4", { className: "sources-heading", text: "Sources" }), this.list);
      this.node.setAttribute("aria-label", "Sources");
    }

    get size() {
      return this.byMoment.size;
    }

    source(data) {
      const videoId = typeof data.video_id === "string" ? data.video_id : "";
      const start = typeof data.start === "number" && Number.isFinite(data.start) && data.start >= 0 ? data.start : null;
      const key = `${videoId}|${start === null ? "" : Math.floor(start)}`;
      let found = this.byMoment.get(key);
      if (found) return found;
      const title = typeof data.title === "string" && data.title.trim() ? data.title : videoId || "Unknown video";
      const at = start === null ? "" : clock(start);
      const href = momentUrl(videoId, start);
      found = { number: this.byMoment.size + 1, videoId, title, at, href, label: at ? `${title} — ${at}` : title };
      this.byMoment.set(key, found);
      if (href) this.videos.add(videoId);
      const quote = typeof data.quote === "string" ? data.quote.trim() : "";
      const what = href
        ? momentLink(href, { className: "source-link", text: found.label })
        : el("span", { className: "source-link", text: found.label });
      this.list.append(
        el("li", { className: "source", dataset: { videoId, source: String(found.number) } },
          what,
          quote ? el("q", { className: "source-quote", text: quote.length > 300 ? `${quote.slice(0, 299)}…` : quote }) : null),
      );
      show(this.node, true);
      return found;
    }

    /** The chip `[n]` for a citation (a link to the moment; plain when it cannot be linked). */
    chip(data) {
      if (!data || typeof data !== "object") return null;
      const source = this.source(data);
      const props = { className: "cite", text: `[${source.number}]`, title: source.label, dataset: { source: String(source.number), videoId: source.videoId } };
      const chip = source.href ? momentLink(source.href, props) : el("span", props);
      chip.setAttribute("aria-label", `Source ${source.number}: ${source.label}`);
      return chip;
    }
  }

  /** The reply's own words in its text paragraphs: the citation chips are not part of them. */
  function replyText(body) {
    let text = "";
    for (const p of body.querySelectorAll(":scope > .message-text")) {
      for (const node of p.childNodes) if (!node.classList?.contains("cite")) text += node.textContent;
    }
    return text;
  }

  /**
   * Turn the [mm:ss] timestamps of a reply's text into links to that moment: of the one video it
   * cites, or of the video whose chip the timestamp follows. Others stay text.
   */
  function linkTimestamps(body, sources) {
    const only = sources.videos.size === 1 ? [...sources.videos][0] : null;
    for (const p of body.querySelectorAll(":scope > .message-text")) {
      let after = null; // the video of the chip just before
      for (const node of [...p.childNodes]) {
        if (node.nodeType === Node.TEXT_NODE) linkTimestampsIn(node, only, after, sources);
        after = node.nodeType === Node.ELEMENT_NODE && node.matches("a.cite") ? node.dataset.videoId : null;
      }
    }
  }

  function linkTimestampsIn(textNode, only, after, sources) {
    const text = textNode.data;
    const parts = [];
    let last = 0;
    for (const match of text.matchAll(TIMESTAMP)) {
      const [h, m, s] = [Number(match[1] || 0), Number(match[2]), Number(match[3])];
      if (s > 59 || (match[1] !== undefined && m > 59)) continue;
      const rightAfter = after && parts.length === 0 && !text.slice(0, match.index).trim();
      const videoId = rightAfter ? after : only;
      if (!videoId || !sources.videos.has(videoId)) continue;
      const seconds = h * 3600 + m * 60 + s;
      const title = [...sources.byMoment.values()].find((source) => source.videoId === videoId)?.title || videoId;
      parts.push(
        text.slice(last, match.index),
        momentLink(momentUrl(videoId, seconds), { className: "timestamp-link", text: match[0], title: `${title} — ${clock(seconds)}`, dataset: { videoId } }),
      );
      last = match.index + match[0].length;
    }
    if (!parts.length) return;
    parts.push(text.slice(last));
    textNode.replaceWith(...parts.filter((part) => part !== ""));
  }

  // --------------------------------------------------------------------------- Markdown

  // A small Markdown renderer for artifacts (the model's tables, outlines and notes). It builds
  // DOM nodes with createElement / text nodes only, like the rest of this file: raw HTML in the
  // Markdown is shown as the text it is, and only http(s) links become links (opening a new tab
  // that is told nothing about this page). Supported: ATX headings, paragraphs, bullet and
  // numbered lists (nested), GFM pipe tables, fenced code, block quotes, rules, `code`, **bold**,
  // *italic* / _italic_, ~~strike~~, [links](https://…), <https://…> and bare https:// links.

  const MD_MAX_DEPTH = 8; // deeper nesting (lists, quotes, emphasis) is shown as text
  const MD_PUNCT = /[!-/:-@[-`{-~]/;
  const MD_WORD = /[\p{L}\p{N}]/u;
  const MD_HEADING = /^ {0,3}(#{1,6})(?:[ \t]+(.*))?$/;
  const MD_HR = /^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$/;
  const MD_QUOTE = /^ {0,3}> ?/;
  const MD_ITEM = /^( *)([-*+]|\d{1,9}[.)])(?:[ \t]+(.*)|[ \t]*)$/;
  const MD_FENCE = /^( {0,3})(`{3,}|~{3,})(.*)$/;
  const MD_FENCE_CLOSE = /^ {0,3}(`{3,}|~{3,})[ \t]*$/;
  const MD_TABLE_SEP = /^ {0,3}\|?[ \t]*:?-+:?[ \t]*(?:\|[ \t]*:?-+:?[ \t]*)*\|?[ \t]*$/;
  const MD_BARE_URL = /https?:\/\/[^\s<>"]+/iy;
  const MD_AUTOLINK = /<(https?:\/\/[^\s<>]+)>/iy;

  /** An http(s) URL written in the Markdown, as the link's href; null for anything else. */
  function safeHref(raw) {
    const value = String(raw || "").trim();
    if (!/^https?:\/\/[^\s]/i.test(value)) return null;
    try {
      const url = new URL(value);
      return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
    } catch {
      return null;
    }
  }

  function mdLinkNode(href, title) {
    return el("a", { href, title: title || undefined, target: "_blank", rel: "noopener noreferrer" });
  }

  function mdIndent(line) {
    return /^ */.exec(line)[0].length;
  }

  /** Leading tabs as spaces (to the next multiple of four). */
  function mdExpandTabs(line) {
    if (!line.includes("\t")) return line;
    let out = "";
    let i = 0;
    for (; i < line.length && (line[i] === " " || line[i] === "\t"); i++) {
      out += line[i] === "\t" ? " ".repeat(4 - (out.length % 4)) : " ";
    }
    return out + line.slice(i);
  }

  /** A heading's text without its optional closing #s. */
  function mdHeadingText(raw) {
    const text = raw.trim();
    let end = text.length;
    while (end > 0 && text[end - 1] === "#") end--;
    if (end === text.length || (end > 0 && text[end - 1] !== " " && text[end - 1] !== "\t")) return text;
    return text.slice(0, end).trim();
  }

  function mdFence(line) {
    const m = MD_FENCE.exec(line);
    if (!m || (m[2][0] === "`" && m[3].includes("`"))) return null;
    return { indent: m[1].length, marker: m[2], info: m[3].trim() };
  }

  function mdItem(line) {
    const m = MD_ITEM.exec(line);
    if (!m) return null;
    const indent = m[1].length;
    const marker = m[2];
    const ordered = marker[0] >= "0" && marker[0] <= "9";
    const text = m[3] === undefined ? "" : m[3];
    const spaces = mdIndent(line.slice(indent + marker.length));
    return {
      indent,
      ordered,
      kind: ordered ? marker.slice(-1) : marker,
      start: ordered ? parseInt(marker, 10) : 1,
      text,
      contentIndent: indent + marker.length + (text && spaces <= 4 ? spaces : 1),
    };
  }

  /** The cells of a table row: outer pipes dropped, split on pipes that are not escaped. */
  function mdRow(line) {
    let s = line.trim();
    if (s.startsWith("|")) s = s.slice(1);
    if (s.endsWith("|") && !s.endsWith("\\|")) s = s.slice(0, -1);
    const cells = [];
    let cell = "";
    for (let k = 0; k < s.length; k++) {
      if (s[k] === "\\" && s[k + 1] === "|") {
        cell += "|";
        k++;
      } else if (s[k] === "|") {
        cells.push(cell.trim());
        cell = "";
      } else cell += s[k];
    }
    cells.push(cell.trim());
    return cells;
  }

  /** A table starting at line i: a header row with pipes, then a delimiter row of as many cells. */
  function mdTableAt(lines, i) {
    const head = lines[i];
    const sep = lines[i + 1];
    if (sep === undefined || !head.includes("|") || !sep.includes("|") || !MD_TABLE_SEP.test(sep)) return null;
    if (mdIndent(head) > 3) return null;
    const headers = mdRow(head);
    const aligns = mdRow(sep).map((cell) => {
      const left = cell.startsWith(":");
      const right = cell.endsWith(":");
      return left && right ? "center" : right ? "right" : left ? "left" : "";
    });
    return headers.length === aligns.length ? { headers, aligns } : null;
  }

  /** Whether line i begins a block that ends a paragraph (or a table, or a lazy line). */
  function mdInterrupts(lines, i) {
    const line = lines[i];
    if (mdFence(line) || MD_HEADING.test(line) || MD_HR.test(line) || MD_QUOTE.test(line)) return true;
    if (mdTableAt(lines, i)) return true;
    const item = mdItem(line);
    return Boolean(item && item.indent <= 3 && item.text.trim() && (!item.ordered || item.start === 1));
  }

  /** The block nodes of some Markdown lines. */
  function mdBlocks(lines, depth) {
    const out = [];
    if (depth > MD_MAX_DEPTH) {
      const text = lines.join("\n").trim();
      if (text) out.push(el("p", { className: "md-plain", text }));
      return out;
    }
    let i = 0;
    while (i < lines.length) {
      const line = lines[i];
      if (!line.trim()) {
        i++;
        continue;
      }
      const fence = mdFence(line);
      if (fence) {
        const code = [];
        const strip = new RegExp(`^ {0,${fence.indent}}`);
        for (i++; i < lines.length; i++) {
          const close = MD_FENCE_CLOSE.exec(lines[i]);
          if (close && close[1][0] === fence.marker[0] && close[1].length >= fence.marker.length) {
            i++;
            break;
          }
          code.push(lines[i].replace(strip, ""));
        }
        const lang = fence.info.split(/\s+/)[0];
        const className = /^[\w+#.-]{1,32}$/.test(lang) ? `language-${lang}` : undefined;
        out.push(el("pre", { className: "md-code" }, el("code", { className, text: code.join("\n") })));
        continue;
      }
      const heading = MD_HEADING.exec(line);
      if (heading) {
        const h = el(`h${heading[1].length}`);
        mdInline(mdHeadingText(heading[2] || ""), h, depth);
        out.push(h);
        i++;
        continue;
      }
      if (MD_HR.test(line)) {
        out.push(el("hr"));
        i++;
        continue;
      }
      if (MD_QUOTE.test(line)) {
        const inner = [];
        for (; i < lines.length; i++) {
          const l = lines[i];
          if (MD_QUOTE.test(l)) inner.push(l.replace(MD_QUOTE, ""));
          else if (l.trim() && inner.length && inner[inner.length - 1].trim() && !mdInterrupts(lines, i)) inner.push(l);
          else break;
        }
        out.push(el("blockquote", null, mdBlocks(inner, depth + 1)));
        continue;
      }
      const table = mdTableAt(lines, i);
      if (table) {
        const rows = [];
        for (i += 2; i < lines.length && lines[i].trim() && !mdInterrupts(lines, i); i++) rows.push(mdRow(lines[i]));
        out.push(mdTable(table, rows, depth));
        continue;
      }
      const item = mdItem(line);
      if (item && item.indent <= 3) {
        const list = mdList(lines, i, depth);
        out.push(list.node);
        i = list.next;
        continue;
      }
      const para = [line];
      for (i++; i < lines.length && lines[i].trim() && !mdInterrupts(lines, i); i++) para.push(lines[i]);
      const p = el("p");
      mdInline(para.map((l) => l.replace(/^ +/, "")).join("\n").trimEnd(), p, depth);
      out.push(p);
    }
    return out;
  }

  function mdTable(table, rows, depth) {
    const cell = (tag, text, column, props) => {
      const align = table.aligns[column];
      const node = el(tag, { ...props, className: align ? `align-${align}` : undefined });
      mdInline(text, node, depth);
      return node;
    };
    const head = el("tr", null, table.headers.map((text, c) => cell("th", text, c, { scope: "col" })));
    const body = rows.map((cells) => el("tr", null, table.headers.map((_, c) => cell("td", cells[c] || "", c))));
    // The wrapper scrolls sideways when the table is wider than the card (narrow screens).
    const wrap = el("div", { className: "md-table", tabIndex: 0 },
      el("table", null, el("thead", null, head), body.length ? el("tbody", null, body) : null));
    wrap.setAttribute("role", "region");
    wrap.setAttribute("aria-label", "Table");
    return wrap;
  }

  /** A list from line i: its items (with their indented lines) as nested blocks. */
  function mdList(lines, i, depth) {
    const first = mdItem(lines[i]);
    const items = [];
    let item = null;
    let loose = false;
    while (i < lines.length) {
      const line = lines[i];
      const found = mdItem(line);
      if (found && found.kind === first.kind && found.indent <= (item ? item.indent + 1 : 3)) {
        item = { ...found, lines: [found.text] };
        items.push(item);
        i++;
        continue;
      }
      if (!line.trim()) {
        let k = i + 1;
        while (k < lines.length && !lines[k].trim()) k++;
        if (k >= lines.length) break;
        const next = mdItem(lines[k]);
        if (mdIndent(lines[k]) >= item.indent + 2) {
          for (; i < k; i++) item.lines.push("");
          loose = true;
          continue;
        }
        if (next && next.kind === first.kind && next.indent <= item.indent + 1) {
          i = k;
          loose = true;
          continue;
        }
        break;
      }
      const indent = mdIndent(line);
      if (indent >= item.indent + 2) {
        item.lines.push(line.slice(Math.min(indent, item.contentIndent)));
        i++;
        continue;
      }
      if (found || mdInterrupts(lines, i)) break;
      item.lines.push(line.trimStart()); // a lazy continuation of the item's text
      i++;
    }
    const node = el(first.ordered ? "ol" : "ul");
    if (first.ordered && first.start !== 1) node.start = first.start;
    for (const it of items) {
      const li = el("li");
      for (const block of mdBlocks(it.lines, depth + 1)) {
        if (!loose && block.tagName === "P") li.append(...block.childNodes);
        else li.append(block);
      }
      node.append(li);
    }
    return { node, next: i };
  }

  /** The length of the run of `ch` at i. */
  function mdRun(text, i, ch) {
    let j = i;
    while (text[j] === ch) j++;
    return j - i;
  }

  /**
   * The start of the next run of exactly `size` backticks from `from`, or -1. `none` remembers,
   * per size, a position from which there is none, so unmatched backticks cost linear time.
   */
  function mdCodeClose(text, from, size, none) {
    if (none.has(size) && from >= none.get(size)) return -1;
    for (let j = text.indexOf("`", from); j !== -1; j = text.indexOf("`", j)) {
      const run = mdRun(text, j, "`");
      if (run === size) return j;
      j += run;
    }
    none.set(size, Math.min(from, none.has(size) ? none.get(size) : Infinity));
    return -1;
  }

  /** The closing run of an emphasis opened by `size` × `ch` at i (flanking rules simplified). */
  function mdEmphasisClose(text, from, ch, size, none, codeNone) {
    const key = `${ch}${size}`;
    if (none.has(key) && from >= none.get(key)) return -1;
    for (let j = from; j < text.length; j++) {
      const c = text[j];
      if (c === "\\") {
        j++;
      } else if (c === "`") {
        const run = mdRun(text, j, "`");
        const close = mdCodeClose(text, j + run, run, codeNone);
        j = close === -1 ? j + run - 1 : close + run - 1;
      } else if (c === ch) {
        const run = mdRun(text, j, ch);
        const after = text[j + run] || "";
        const closes = run === size && j > from && !/\s/.test(text[j - 1]) && !(ch === "_" && MD_WORD.test(after));
        if (closes) return j;
        j += run - 1;
      }
    }
    none.set(key, Math.min(from, none.has(key) ? none.get(key) : Infinity));
    return -1;
  }

  /** A [label](destination "title") at i: its parts and where it ends, or null. */
  function mdLink(text, i, ends) {
    if (ends.bracket < i || ends.paren < i) return null; // no "]" or ")" after it: not a link
    let depth = 0;
    let j = i;
    const limit = Math.min(text.length, i + 500);
    for (; j < limit; j++) {
      const c = text[j];
      if (c === "\\") j++;
      else if (c === "[") depth++;
      else if (c === "]" && --depth === 0) break;
    }
    if (text[j] !== "]" || text[j + 1] !== "(") return null;
    const label = text.slice(i + 1, j);
    let k = j + 2;
    while (text[k] === " " || text[k] === "\n") k++;
    let dest = "";
    if (text[k] === "<") {
      const end = text.indexOf(">", k);
      if (end === -1 || /[\n<]/.test(text.slice(k + 1, end))) return null;
      dest = text.slice(k + 1, end);
      k = end + 1;
    } else {
      const start = k;
      let parens = 0;
      for (; k < text.length && k < start + 2048; k++) {
        const c = text[k];
        if (c === "\\" && MD_PUNCT.test(text[k + 1] || "")) k++;
        else if (/\s/.test(c)) break;
        else if (c === "(") parens++;
        else if (c === ")") {
          if (parens === 0) break;
          parens--;
        }
      }
      dest = text.slice(start, k);
    }
    while (text[k] === " " || text[k] === "\n") k++;
    let title = "";
    const quote = { '"': '"', "'": "'", "(": ")" }[text[k]];
    if (quote && text[k - 1] !== "(") {
      const end = text.indexOf(quote, k + 1);
      if (end === -1) return null;
      title = text.slice(k + 1, end);
      k = end + 1;
      while (text[k] === " " || text[k] === "\n") k++;
    }
    if (text[k] !== ")") return null;
    return { label, dest: dest.replace(/\\([!-/:-@[-`{-~])/g, "$1"), title, end: k + 1 };
  }

  /** A bare http(s) URL at i, without the punctuation that ends its sentence. */
  function mdBareUrl(text, i) {
    MD_BARE_URL.lastIndex = i;
    const m = MD_BARE_URL.exec(text);
    if (!m) return null;
    let url = m[0];
    for (;;) {
      const last = url[url.length - 1];
      if (".,:;!?'*_~".includes(last)) url = url.slice(0, -1);
      else if (last === ")" && (url.match(/\(/g) || []).length < (url.match(/\)/g) || []).length) url = url.slice(0, -1);
      else break;
    }
    return url.length > "https://".length ? url : null;
  }

  /** Inline Markdown of `text` appended to `parent`: text nodes and a few safe elements. */
  function mdInline(text, parent, depth = 0, inLink = false) {
    if (depth > MD_MAX_DEPTH) {
      parent.append(text);
      return;
    }
    let buffer = "";
    const flush = () => {
      if (buffer) parent.append(document.createTextNode(buffer));
      buffer = "";
    };
    const put = (node) => {
      flush();
      parent.append(node);
    };
    const codeNone = new Map();
    const emNone = new Map();
    const ends = { bracket: text.lastIndexOf("]"), paren: text.lastIndexOf(")") };
    let i = 0;
    while (i < text.length) {
      const ch = text[i];
      if (ch === "\\" && i + 1 < text.length) {
        const next = text[i + 1];
        if (next === "\n") {
          put(el("br"));
          i += 2;
          continue;
        }
        if (MD_PUNCT.test(next)) {
          buffer += next;
          i += 2;
          continue;
        }
      }
      if (ch === "\n") {
        const hard = buffer.endsWith("  ");
        let end = buffer.length;
        while (end > 0 && buffer[end - 1] === " ") end--;
        buffer = buffer.slice(0, end);
        if (hard) put(el("br"));
        else buffer += "\n";
        for (i++; text[i] === " "; i++);
        continue;
      }
      if (ch === "`") {
        const run = mdRun(text, i, "`");
        const close = mdCodeClose(text, i + run, run, codeNone);
        if (close === -1) {
          buffer += text.slice(i, i + run);
          i += run;
          continue;
        }
        let code = text.slice(i + run, close).replace(/\n/g, " ");
        if (code.length > 2 && code.startsWith(" ") && code.endsWith(" ") && code.trim()) code = code.slice(1, -1);
        put(el("code", { text: code }));
        i = close + run;
        continue;
      }
      if (ch === "[" && !inLink) {
        const link = mdLink(text, i, ends);
        if (link) {
          const href = safeHref(link.dest);
          if (href) {
            const a = mdLinkNode(href, link.title);
            if (link.label.trim()) mdInline(link.label, a, depth + 1, true);
            else a.textContent = href;
            put(a);
          } else buffer += text.slice(i, link.end); // not an http(s) link: the Markdown as text
          i = link.end;
          continue;
        }
      }
      if (ch === "<" && !inLink) {
        MD_AUTOLINK.lastIndex = i;
        const m = MD_AUTOLINK.exec(text);
        const href = m && safeHref(m[1]);
        if (href) {
          put(el("a", { href, target: "_blank", rel: "noopener noreferrer", text: m[1] }));
          i += m[0].length;
          continue;
        }
      }
      // A bare URL (GFM's autolink rule: at the start, or after a space or one of * _ ~ ( ).
      if ((ch === "h" || ch === "H") && !inLink && (i === 0 || /[\s*_~(]/.test(text[i - 1]))) {
        const url = mdBareUrl(text, i);
        const href = url && safeHref(url);
        if (href) {
          put(el("a", { href, target: "_blank", rel: "noopener noreferrer", text: url }));
          i += url.length;
          continue;
        }
      }
      if (ch === "*" || ch === "_" || ch === "~") {
        const run = mdRun(text, i, ch);
        const after = text[i + run] || "";
        const opens =
          (ch === "~" ? run === 2 : run <= 3) &&
          after && !/\s/.test(after) &&
          !(ch === "_" && MD_WORD.test(text[i - 1] || ""));
        const close = opens ? mdEmphasisClose(text, i + run, ch, run, emNone, codeNone) : -1;
        if (close === -1) {
          buffer += text.slice(i, i + run);
          i += run;
          continue;
        }
        let node;
        let inner;
        if (ch === "~") node = inner = el("del");
        else if (run === 1) node = inner = el("em");
        else if (run === 2) node = inner = el("strong");
        else {
          inner = el("em");
          node = el("strong", null, inner);
        }
        mdInline(text.slice(i + run, close), inner, depth + 1, inLink);
        put(node);
        i = close + run;
        continue;
      }
      buffer += ch;
      i++;
    }
    flush();
  }

  /** Markdown text as a fragment of safe DOM nodes. */
  function renderMarkdown(source) {
    const lines = String(source ?? "").replace(/\0/g, "\uFFFD").replace(/\r\n?/g, "\n").split("\n").map(mdExpandTabs);
    const fragment = document.createDocumentFragment();
    fragment.append(...mdBlocks(lines, 0));
    return fragment;
  }

  // --------------------------------------------------------------------------- history

  /**
   * A saved message's text, with an assistant reply's tool calls as cards and its citations as
   * chips where they happened (`at`: the offset in the text, in code points as the server counts
   * them), and its timestamps linked; the chips' sources go to `sources`.
   */
  function messageBody(message, sources) {
    const body = el("div", { className: "message-body" });
    const assistant = message.role === "assistant";
    const calls = assistant && Array.isArray(message.tool_calls) ? message.tool_calls : [];
    const cites = assistant && Array.isArray(message.citations) ? message.citations : [];
    // In the text's order; at one offset a call comes before a citation (which leads its text).
    const marks = [...calls.map((call) => ({ call })), ...cites.map((cite) => ({ cite }))]
      .filter((mark) => (mark.call || mark.cite) && typeof (mark.call || mark.cite) === "object")
      .map((mark) => ({ ...mark, at: Number((mark.call || mark.cite).at) || 0 }))
      .sort((a, b) => a.at - b.at);
    const chars = Array.from(String(message.content || ""));
    let said = 0;
    let para = el("p", { className: "message-text" });
    body.append(para);
    const paragraph = () => {
      if (body.lastElementChild !== para) body.append((para = el("p", { className: "message-text" })));
      return para;
    };
    const say = (text) => text && paragraph().append(text);
    for (const mark of marks) {
      const at = Math.min(Math.max(mark.at, said), chars.length);
      say(chars.slice(said, at).join(""));
      said = at;
      if (mark.call) {
        const card = new ToolCard(null, mark.call);
        card.result({ ok: mark.call.ok, summary: mark.call.summary, error: mark.call.ok ? null : toolError(mark.call) });
        body.append(card.node);
      } else paragraph().append(sources.chip(mark.cite));
    }
    say(chars.slice(said).join(""));
    linkTimestamps(body, sources);
    return body;
  }

  function messageItem(message) {
    const sources = new Sources();
    const li = el(
      "li",
      {
        className: `message ${message.role}`,
        dataset: { role: message.role, status: message.status, messageId: message.id },
      },
      el(
        "div",
        { className: "message-meta" },
        el("span", { className: "message-role", text: message.role === "user" ? "You" : "Assistant" }),
        el("span", { className: "message-badge", text: message.status === "complete" ? "" : message.status }),
        el("time", { className: "message-time", text: formatTime(message.created_at), dateTime: message.created_at }),
      ),
      messageBody(message, sources),
      sources.node,
    );
    return li;
  }

  function nearBottom(box) {
    return box.scrollHeight - box.scrollTop - box.clientHeight < 80;
  }

  function scrollToEnd(box) {
    box.scrollTop = box.scrollHeight;
  }

  async function loadHistory(sessionId, signal) {
    try {
      const page = await api(`/v1/sessions/${sessionId}/messages?limit=${HISTORY_PAGE_SIZE}`, { signal });
      // Pages come newest first; show the conversation oldest to newest.
      $("messages").replaceChildren(...page.items.slice().reverse().map(messageItem));
      state.historyCursor = page.next_cursor;
      show($("history-older"), Boolean(page.has_more));
      scrollToEnd($("messages"));
    } catch (err) {
      if (!signal?.aborted && err.status !== 401) notify(`Could not load the history: ${err.message}`);
    }
  }

  async function loadOlder() {
    const sessionId = state.sessionId;
    const cursor = state.historyCursor;
    if (!sessionId || !cursor) return;
    const signal = state.view?.signal;
    const query = `limit=${HISTORY_PAGE_SIZE}&cursor=${encodeURIComponent(cursor)}`;
    const page = await api(`/v1/sessions/${sessionId}/messages?${query}`, { signal });
    if (state.sessionId !== sessionId) return;
    const box = $("messages");
    const fromBottom = box.scrollHeight - box.scrollTop;
    box.prepend(...page.items.slice().reverse().map(messageItem));
    box.scrollTop = box.scrollHeight - fromBottom; // keep what the reader was looking at in place
    state.historyCursor = page.next_cursor;
    show($("history-older"), Boolean(page.has_more));
  }

  // --------------------------------------------------------------------------- actions

  /** The open session's audit log (GET .../actions), newest first; `append` loads older ones. */
  async function loadActions(append = false) {
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
    await Promise.all([loadActions(), refreshVideos(), loadArtifacts()]);
  }

  // --------------------------------------------------------------------------- artifacts

  const ARTIFACTS_PAGE_SIZE = 20;
  const ARTIFACT_KINDS = new Set(["table", "outline", "notes", "document"]);

  function artifactKind(kind) {
    return ARTIFACT_KINDS.has(kind) ? kind : "document";
  }

  function artifactPath(sessionId, artifactId) {
    return `/v1/sessions/${sessionId}/artifacts/${encodeURIComponent(artifactId)}`;
  }

  /** The open session's artifacts (GET .../artifacts), newest-updated first; `append` loads more. */
  async function loadArtifacts(append = false) {
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

  function artifactsChanged() {
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

  // --------------------------------------------------------------------------- chat

  function setBusy(busy) {
    $("messages").setAttribute("aria-busy", busy ? "true" : "false");
    $("chat-send").disabled = busy;
    $("chat-stop").disabled = !busy;
    for (const radio of document.querySelectorAll('input[name="transport"]')) radio.disabled = busy;
  }

  function transport() {
    return $("transport-ws").checked ? "ws" : "sse";
  }

  function rememberPending(sessionId, requestId) {
    sessionStorage.setItem(PENDING_STORAGE, JSON.stringify({ sessionId, requestId }));
  }

  function forgetPending(requestId) {
    try {
      const pending = JSON.parse(sessionStorage.getItem(PENDING_STORAGE) || "null");
      if (!pending || !requestId || pending.requestId === requestId) sessionStorage.removeItem(PENDING_STORAGE);
    } catch {
      sessionStorage.removeItem(PENDING_STORAGE);
    }
  }

  function toolsMode() {
    const mode = $("tools-mode").value;
    return TOOLS_MODES.includes(mode) ? mode : "auto";
  }

  /**
   * One tool call of the assistant, inline in its reply: the tool's name and input, a live progress
   * line, Approve / Deny while it waits for approval, then its result or error. All text.
   */
  class ToolCard {
    constructor(reply, data) {
      this.reply = reply; // null for a saved reply (from the history)
      this.callId = String(data.call_id || "");
      const name = String(data.name || "tool");
      this.nameNode = el("span", { className: "tool-name", text: name });
      this.inputNode = el("span", { className: "tool-input", text: inputSummary(data.input) });
      this.stateNode = el("span", { className: "tool-state", text: "Running…" });
      this.progressNode = el("p", { className: "tool-progress muted" });
      this.approvalNode = el("div", { className: "tool-approval" });
      this.resultNode = el("p", { className: "tool-result" });
      this.progressNode.hidden = true;
      this.approvalNode.hidden = true;
      this.resultNode.hidden = true;
      this.buttons = [];
      this.outcome = null;
      this.node = el(
        "div",
        { className: "tool-card", role: "group", dataset: { callId: this.callId, tool: name, state: "running" } },
        el("div", { className: "tool-head" }, this.nameNode, this.inputNode, this.stateNode),
        this.progressNode,
        this.approvalNode,
        this.resultNode,
      );
      this.node.setAttribute("aria-label", `Tool call: ${name}`);
    }

    setState(state, label) {
      this.node.dataset.state = state;
      this.stateNode.textContent = label;
    }

    called(data) {
      if (data.name) {
        this.nameNode.textContent = String(data.name);
        this.node.dataset.tool = String(data.name);
      }
      if ("input" in data) this.inputNode.textContent = inputSummary(data.input);
    }

    progress(data) {
      this.progressNode.textContent = String(data.message || humanStage(data.stage) || "");
      show(this.progressNode, Boolean(this.progressNode.textContent));
    }

    result(data) {
      const ok = Boolean(data.ok);
      if (ok) this.resultNode.textContent = String(data.summary || "Done.");
      else {
        const error = toolError(data);
        this.resultNode.textContent = `${error.code || "TOOL_FAILED"}: ${error.message || data.summary || "the tool failed"}`;
      }
      show(this.resultNode, true);
      show(this.progressNode, false);
      this.setState(ok ? "ok" : "failed", ok ? "Done" : "Failed");
      this.closeApproval("No longer waiting.");
    }

    approvalOutcome() {
      if (!this.outcome) {
        this.outcome = el("span", { className: "tool-approval-outcome" });
        this.approvalNode.append(this.outcome);
      }
      show(this.approvalNode, true);
      return this.outcome;
    }

    askApproval() {
      if (this.buttons.length || this.node.dataset.approval) return; // told again (a replay)
      const approve = el("button", { type: "button", className: "tool-approve", text: "Approve" });
      const deny = el("button", { type: "button", className: "tool-deny secondary", text: "Deny" });
      approve.addEventListener("click", () => this.decide(true));
      deny.addEventListener("click", () => this.decide(false));
      this.buttons = [approve, deny];
      this.approvalNode.prepend(approve, deny);
      this.approvalOutcome().textContent = "Waiting for your approval.";
      this.setState("waiting", "Needs approval");
    }

    /** POST the decision; the `approval` event that follows tells the outcome for sure. */
    async decide(approve) {
      const requestId = this.reply?.requestId;
      if (!requestId) return;
      for (const button of this.buttons) button.disabled = true;
      this.approvalOutcome().textContent = approve ? "Approving…" : "Denying…";
      try {
        const answer = await api(`/v1/requests/${requestId}/approvals`, {
          method: "POST",
          body: { call_id: this.callId, approve },
        });
        if (!this.node.dataset.approval) this.approvalOutcome().textContent = answer.approved ? "Approved." : "Denied.";
      } catch (err) {
        if (err.status === 409 || err.status === 404) {
          if (!this.node.dataset.approval) this.approvalOutcome().textContent = `Not taken: ${err.message}`;
          return;
        }
        for (const button of this.buttons) button.disabled = false;
        this.approvalOutcome().textContent = "Waiting for your approval.";
        if (err.status !== 401) notify(`Could not send the decision: ${err.message}`);
      }
    }

    approval(data) {
      const approved = Boolean(data.approved);
      for (const button of this.buttons) button.disabled = true;
      this.node.dataset.approval = approved ? "approved" : "denied";
      this.node.dataset.approvedBy = String(data.by || "");
      this.approvalOutcome().textContent = approved
        ? "Approved."
        : data.by === "timeout"
          ? "Denied: no answer in time."
          : "Denied.";
      if (this.node.dataset.state === "waiting") this.setState("running", approved ? "Running…" : "Denied");
    }

    closeApproval(text) {
      if (this.buttons.some((button) => !button.disabled)) {
        for (const button of this.buttons) button.disabled = true;
        if (!this.node.dataset.approval) this.approvalOutcome().textContent = text;
      }
    }

    /** The reply ended: nothing waits any more. */
    abandon() {
      this.closeApproval("No longer waiting: the reply ended.");
      const state = this.node.dataset.state;
      if (state === "running" || state === "waiting") this.setState("unfinished", "No result");
    }
  }

  /** The first `count` code points of `text` (the server counts offsets in code points). */
  function codePointPrefix(text, count) {
    if (count >= text.length) return text;
    if (!/[\uD800-\uDFFF]/.test(text)) return text.slice(0, count);
    let units = 0;
    for (let points = 0; points < count && units < text.length; points++) {
      const code = text.charCodeAt(units);
      units += code >= 0xd800 && code <= 0xdbff && units + 1 < text.length ? 2 : 1;
    }
    return text.slice(0, units);
  }

  /**
   * An artifact the assistant is writing, inline in its reply: a draft that grows with each
   * `artifact` partial (re-rendered at most once an animation frame, less often while a big one
   * is slow to render), the saved artifact once the final event comes.
   */
  class LiveArtifact {
    constructor(data) {
      this.callId = String(data.call_id || "");
      this.text = "";
      this.frame = 0;
      this.nextRender = 0; // performance.now() before which no draft render starts
      this.title = el("span", { className: "artifact-title", text: "Untitled artifact" });
      this.kind = el("span", { className: "artifact-kind", text: "document" });
      this.label = el("span", { className: "artifact-version", text: "Writing…" });
      this.body = el("div", { className: "artifact-body markdown" });
      this.node = el(
        "details",
        { className: "artifact-card artifact-live", open: true, dataset: { callId: this.callId, status: "streaming", kind: "document" } },
        el("summary", { className: "artifact-head" }, this.title, this.kind, this.label),
        this.body,
      );
      this.node.setAttribute("aria-label", "Artifact");
    }

    get status() {
      return this.node.dataset.status;
    }

    meta(data) {
      if (typeof data.title === "string" && data.title.trim()) this.title.textContent = data.title;
      if (typeof data.kind === "string" && data.kind) {
        this.kind.textContent = artifactKind(data.kind);
        this.node.dataset.kind = artifactKind(data.kind);
      }
      if (typeof data.artifact_id === "string" && data.artifact_id) this.node.dataset.artifactId = data.artifact_id;
    }

    /** `content` replaces the draft from `offset` on (a replayed partial changes nothing). */
    partial(data) {
      if (this.status !== "streaming") return;
      this.meta(data);
      if (data.artifact_id && this.label.textContent === "Writing…") this.label.textContent = "Revising…";
      const offset = Math.max(0, Math.floor(Number(data.offset) || 0));
      this.text = codePointPrefix(this.text, offset) + String(data.content ?? "");
      this.schedule();
    }

    final(data) {
      this.meta(data);
      if (typeof data.content === "string") this.text = data.content;
      const version = Number(data.version) || 1;
      this.node.dataset.status = "saved";
      this.node.dataset.version = String(version);
      this.label.textContent = `v${version} saved`;
      this.render();
    }

    /** The reply ended without a final event: what was written is not saved. */
    unfinished() {
      if (this.status !== "streaming") return;
      this.node.dataset.status = "unsaved";
      this.label.textContent = "Not saved";
      this.render();
    }

    schedule() {
      if (this.frame) return;
      this.frame = requestAnimationFrame(() => {
        this.frame = 0;
        if (this.status !== "streaming") return;
        if (performance.now() < this.nextRender) this.schedule();
        else this.render();
      });
    }

    render() {
      if (this.frame) cancelAnimationFrame(this.frame);
      this.frame = 0;
      const box = $("messages");
      const follow = box.contains(this.node) && nearBottom(box);
      const started = performance.now();
      this.body.replaceChildren(renderMarkdown(this.text));
      // A draft that takes long to render is re-rendered less often (at most ~1/4 of the time).
      this.nextRender = performance.now() + 3 * (performance.now() - started);
      if (this.status === "streaming") this.body.scrollTop = this.body.scrollHeight;
      if (follow) scrollToEnd(box);
    }
  }

  /** One assistant reply being streamed into the history list. */
  class Reply {
    constructor(sessionId) {
      this.sessionId = sessionId;
      this.requestId = null;
      this.lastEventId = "";
      this.finished = false;
      this.stopRequested = false;
      this.abort = new AbortController();
      this.textNode = null; // the text node being written (null after a citation chip)
      this.para = null; // the text paragraph being written
      this.body = el("div", { className: "message-body" });
      this.newSegment();
      this.cards = new Map(); // call id -> ToolCard
      this.artifacts = new Map(); // call id -> LiveArtifact (null once it failed)
      this.sources = new Sources();
      this.badge = el("span", { className: "message-badge", text: "" });
      this.note = el("p", { className: "message-note muted", text: "Waiting for the model…" });
      this.item = el(
        "li",
        { className: "message assistant", dataset: { role: "assistant", status: "streaming" } },
        el(
          "div",
          { className: "message-meta" },
          el("span", { className: "message-role", text: "Assistant" }),
          this.badge,
        ),
        this.body,
        this.sources.node,
        this.note,
      );
      this.notAccepted = null; // set when the server refused the message (nothing was saved)
      this.done = new Promise((resolve) => {
        this.resolveDone = resolve;
      });
      // Leaving the session stops following (the server still finishes and saves the reply).
      this.abort.signal.addEventListener("abort", () => this.resolveDone(), { once: true });
    }

    accepted(requestId) {
      this.requestId = requestId;
      this.item.dataset.requestId = requestId;
      rememberPending(this.sessionId, requestId);
      if (this.stopRequested) this.sendStop();
    }

    /** The reply's text goes on below what came last (a tool card or a limit notice). */
    newSegment() {
      this.textNode = document.createTextNode("");
      this.para = el("p", { className: "message-text" }, this.textNode);
      this.body.append(this.para);
    }

    appendText(text) {
      if (!text) return;
      if (this.body.lastElementChild !== this.para) this.newSegment();
      else if (!this.textNode || this.para.lastChild !== this.textNode) {
        this.textNode = document.createTextNode("");
        this.para.append(this.textNode);
      }
      this.textNode.appendData(text);
    }

    /** A citation: its chip goes where the text it supports begins. */
    cite(data) {
      const chip = this.sources.chip(data);
      if (!chip) return;
      if (this.body.lastElementChild !== this.para) this.newSegment();
      this.para.append(chip);
      this.textNode = null;
    }

    shownText() {
      return replyText(this.body);
    }

    /** The full text the server saved: add what the stream did not show yet. */
    settleText(full) {
      const shown = this.shownText();
      if (full === shown) return;
      if (full.startsWith(shown)) this.appendText(full.slice(shown.length));
      else if (!this.cards.size && !this.artifacts.size && !this.sources.size && !this.body.querySelector(".limit-notice")) {
        this.textNode.data = full;
      }
      // Otherwise the stream and the saved text differ (they should not): keep what was shown.
    }

    /** An `artifact` event: a draft that grows, then the saved artifact (or dropped: failed). */
    artifact(data) {
      const callId = String(data.call_id || "");
      let live = this.artifacts.get(callId);
      if (live === null) return; // it failed already
      if (data.status === "failed") {
        live?.node.remove();
        this.artifacts.set(callId, null);
        const text = `The artifact was not saved: ${data.message || "it failed"}`;
        this.body.append(el("div", { className: "artifact-failed", role: "status", dataset: { callId }, text }));
        return;
      }
      if (!live) {
        live = new LiveArtifact(data);
        this.artifacts.set(callId, live);
        this.body.append(live.node);
      }
      if (data.status === "final") {
        live.final(data);
        scheduleRefresh("artifacts");
      } else live.partial(data);
    }

    card(data) {
      const callId = String(data.call_id || "");
      let card = this.cards.get(callId);
      if (!card) {
        card = new ToolCard(this, data);
        this.cards.set(callId, card);
        this.body.append(card.node);
      }
      return card;
    }

    /** Handle a stream event (SSE or WebSocket); returns true when it ends the reply. */
    handle(type, data) {
      if (this.finished) return true;
      const box = $("messages");
      const follow = nearBottom(box);
      if (type === "stage") {
        const pending = data.pending_video_ids || [];
        this.note.textContent = pending.length
          ? `Generating… (still processing: ${pending.join(", ")})`
          : "Generating…";
      } else if (type === "token") {
        this.appendText(String(data.text || ""));
        this.item.dataset.tokens = "yes";
      } else if (type === "citation") {
        this.cite(data);
      } else if (type === "artifact") {
        this.artifact(data);
        if (data.status === "partial") this.note.textContent = "Writing an artifact…";
      } else if (type === "tool_call") {
        this.card(data).called(data);
        this.note.textContent = "Working…";
      } else if (type === "tool_progress") {
        this.card(data).progress(data);
      } else if (type === "tool_result") {
        const card = this.card(data);
        card.result(data);
        this.note.textContent = "Generating…";
        scheduleRefresh("actions");
        // Over SSE no session_update comes: a call that changed the videos refreshes the list.
        if (data.ok && MUTATING_TOOLS.has(String(data.name || card.node.dataset.tool))) scheduleRefresh("videos");
      } else if (type === "approval_required") {
        this.card(data).askApproval();
        this.note.textContent = "Waiting for your approval…";
      } else if (type === "approval") {
        this.card(data).approval(data);
        this.note.textContent = data.approved ? "Working…" : "Generating…";
      } else if (type === "limit_reached") {
        const text = `Limit reached: ${data.message || data.limit || "this reply may do no more"}`;
        this.body.append(el("div", { className: "limit-notice", role: "status", dataset: { limit: String(data.limit || "") }, text }));
      } else if (type === "complete" || type === "cancelled" || type === "error") {
        this.finish(type, data);
      }
      if (follow) scrollToEnd(box);
      return this.finished;
    }

    finish(type, data) {
      this.finished = true;
      if (typeof data.text === "string") this.settleText(data.text);
      linkTimestamps(this.body, this.sources);
      for (const card of this.cards.values()) card.abandon();
      if (this.cards.size) scheduleRefresh("actions");
      for (const live of this.artifacts.values()) live?.unfinished();
      if (this.artifacts.size || [...this.cards.values()].some((card) => /artifact/.test(card.node.dataset.tool))) {
        scheduleRefresh("artifacts");
      }
      const status = type === "complete" ? "complete" : type === "cancelled" ? "cancelled" : "failed";
      this.item.dataset.status = status;
      if (data.message_id) {
        // Already shown by a history load that raced this stream: keep one copy.
        const existing = $("messages").querySelector(`[data-message-id="${CSS.escape(data.message_id)}"]`);
        if (existing && existing !== this.item) existing.remove();
        this.item.dataset.messageId = data.message_id;
      }
      this.badge.textContent = status === "complete" ? "" : status;
      if (type === "error") this.note.textContent = `Error: ${data.message || data.code || "the reply failed"}`;
      else if (type === "cancelled") this.note.textContent = "Stopped.";
      else this.note.textContent = "";
      show(this.note, Boolean(this.note.textContent));
      forgetPending(this.requestId);
      this.resolveDone();
    }

    fail(message) {
      if (!this.finished) this.finish("error", { message });
    }

    stop() {
      this.stopRequested = true;
      this.note.textContent = "Stopping…";
      if (this.requestId) this.sendStop();
    }

    sendStop() {
      if (this.transport === "ws" && state.socket?.isOpen()) {
        state.socket.cancel();
        return;
      }
      api(`/v1/requests/${this.requestId}/cancel`, { method: "POST" }).catch((err) => {
        if (!this.finished) notify(`Could not stop the reply: ${err.message}`);
      });
    }

    /** Follow (or resume) this reply's SSE stream from its last event id. */
    async follow() {
      try {
        await followSSE(`/v1/streams/${this.requestId}`, {
          signal: this.abort.signal,
          lastEventId: this.lastEventId,
          onReconnecting: () => {
            if (!this.finished) this.note.textContent = "Connection lost; reconnecting…";
          },
          onEvent: (event) => {
            this.lastEventId = event.id;
            let data = {};
            try {
              data = JSON.parse(event.data);
            } catch {
              data = {};
            }
            return this.handle(event.type, data);
          },
        });
      } catch (err) {
        this.fail(err.message);
      }
    }
  }

  /** WebSocket transport for one session: first frame authenticates (browsers can't set headers). */
  class ChatSocket {
    constructor(sessionId) {
      this.sessionId = sessionId;
      this.ws = null;
      this.ready = null;
      this.reply = null;
    }

    isOpen() {
      return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
    }

    open() {
      if (this.ready) return this.ready;
      const scheme = location.protocol === "https:" ? "wss:" : "ws:";
      const ws = new WebSocket(`${scheme}//${location.host}/v1/sessions/${this.sessionId}/ws`);
      this.ws = ws;
      this.ready = new Promise((resolve, reject) => {
        let opened = false;
        ws.addEventListener("open", () => ws.send(JSON.stringify({ type: "auth", api_key: state.key })));
        ws.addEventListener("message", (message) => {
          let frame;
          try {
            frame = JSON.parse(message.data);
          } catch {
            return;
          }
          if (frame.type === "ready") {
            opened = true;
            resolve();
          } else this.frame(frame);
        });
        ws.addEventListener("close", (event) => {
          this.ready = null;
          if (this.ws === ws) this.ws = null;
          if (!opened) {
            reject(new ApiError(0, "WEBSOCKET_CLOSED", event.reason || "Could not open the WebSocket."));
          } else this.lost();
        });
      });
      this.ready.catch(() => {});
      return this.ready;
    }

    async send(reply, message) {
      await this.open();
      this.reply = reply;
      this.ws.send(JSON.stringify({ type: "message", content: message, tools: toolsMode() }));
    }

    cancel() {
      if (this.isOpen()) this.ws.send(JSON.stringify({ type: "cancel" }));
    }

    frame(frame) {
      const reply = this.reply;
      if (frame.type === "ping" || frame.type === "pong") return;
      if (frame.type === "session_update") {
        sessionUpdated(this.sessionId, frame);
        return;
      }
      if (!reply) return;
      if (frame.type === "accepted") {
        reply.accepted(frame.request_id);
      } else if (frame.type === "queued") {
        reply.note.textContent = "Queued behind another reply…";
      } else if (frame.type === "error" && !frame.request_id) {
        if (reply.requestId) notify(frame.message || frame.code);
        else {
          // Refused before it started (e.g. too many active requests): nothing was saved.
          this.reply = null;
          reply.notAccepted = new ApiError(0, frame.code || "ERROR", frame.message || "The message was refused.");
          reply.resolveDone();
        }
      } else if (frame.type === "reconnect") {
        // A draining server: the socket closes next and lost() resumes over SSE.
      } else if (!frame.request_id || frame.request_id === reply.requestId) {
        if (frame.id !== null && frame.id !== undefined) reply.lastEventId = String(frame.id);
        if (reply.handle(frame.type, frame)) this.reply = null;
      }
    }

    /** The socket dropped mid-reply: the server keeps generating, so resume that reply over SSE. */
    lost() {
      const reply = this.reply;
      this.reply = null;
      if (!reply || reply.finished) return;
      if (reply.requestId) {
        reply.note.textContent = "WebSocket closed; resuming…";
        reply.follow();
      } else {
        reply.fail("The connection closed before the server accepted the message; check the history.");
      }
    }

    close() {
      this.reply = null;
      const ws = this.ws;
      this.ws = null;
      this.ready = null;
      if (ws && ws.readyState <= WebSocket.OPEN) ws.close(1000, "closing");
    }
  }

  function userItem(text) {
    return messageItem({ id: "", role: "user", status: "complete", content: text, created_at: new Date().toISOString() });
  }

  async function sendMessage(text) {
    const sessionId = state.sessionId;
    if (!sessionId || state.reply || state.loading) return;
    const box = $("messages");
    const question = userItem(text);
    const reply = new Reply(sessionId);
    reply.transport = transport();
    state.reply = reply;
    setBusy(true);
    box.append(question, reply.item);
    scrollToEnd(box);
    $("chat-input").value = "";
    state.view?.signal.addEventListener("abort", () => reply.abort.abort(), { once: true });
    try {
      if (reply.transport === "ws") {
        if (!state.socket) state.socket = new ChatSocket(sessionId);
        await state.socket.send(reply, text);
      } else {
        const started = await api(`/v1/sessions/${sessionId}/chat`, {
          method: "POST",
          body: { message: text, tools: toolsMode() },
          signal: reply.abort.signal,
        });
        reply.accepted(started.request_id);
        reply.follow();
      }
      await reply.done;
      if (reply.notAccepted) throw reply.notAccepted;
    } catch (err) {
      if (!reply.requestId) {
        // Not accepted: nothing was saved, so give the user their text back.
        question.dataset.status = "failed";
        question.querySelector(".message-badge").textContent = "not sent";
        reply.item.remove();
        if (!$("chat-input").value) $("chat-input").value = text;
        if (!reply.abort.signal.aborted && err.status !== 401) notify(err.message);
      } else reply.fail(err.message);
    } finally {
      if (state.reply === reply) {
        state.reply = null;
        setBusy(false);
      }
    }
  }

  /** After a reload: if a reply was streaming in this tab, pick it up from the start. */
  async function resumePendingReply(sessionId, signal) {
    let pending = null;
    try {
      pending = JSON.parse(sessionStorage.getItem(PENDING_STORAGE) || "null");
    } catch {
      pending = null;
    }
    if (!pending || pending.sessionId !== sessionId || !UUID.test(pending.requestId || "")) return;
    let status;
    try {
      status = await api(`/v1/requests/${pending.requestId}`, { signal });
    } catch {
      forgetPending(pending.requestId);
      return;
    }
    if (status.status !== "queued" && status.status !== "streaming") {
      forgetPending(pending.requestId);
      // It ended between the history load and now: load the history again to show it.
      const shown = status.message_id && $("messages").querySelector(`[data-message-id="${CSS.escape(status.message_id)}"]`);
      if (status.message_id && !shown && !signal.aborted) await loadHistory(sessionId, signal);
      return;
    }
    if (signal.aborted || state.reply) return;
    const reply = new Reply(sessionId);
    reply.transport = "sse";
    reply.requestId = pending.requestId;
    reply.item.dataset.requestId = pending.requestId;
    state.reply = reply;
    setBusy(true);
    $("messages").append(reply.item);
    signal.addEventListener("abort", () => reply.abort.abort(), { once: true });
    reply.follow();
    await reply.done;
    if (state.reply === reply) {
      state.reply = null;
      setBusy(false);
    }
  }

  // --------------------------------------------------------------------------- wiring

  function guard(fn) {
    return async (event) => {
      event?.preventDefault?.();
      try {
        await fn(event);
      } catch (err) {
        if (err?.name === "AbortError") return;
        if (err?.status !== 401) notify(err?.message || String(err));
      }
    };
  }

  function withDisabled(button, fn) {
    return async () => {
      button.disabled = true;
      try {
        await fn();
      } finally {
        button.disabled = false;
      }
    };
  }

  function init() {
    $("key-form").addEventListener(
      "submit",
      guard(async () => {
        const key = $("api-key").value.trim();
        if (!key) return;
        if (await useKey(key)) openFromLocation();
      }),
    );
    $("key-forget").addEventListener("click", () => signedOut(""));
    $("notice-close").addEventListener("click", () => show($("notice"), false));

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

    $("video-form").addEventListener(
      "submit",
      guard(async () => {
        const input = $("video-url");
        const url = input.value.trim();
        if (!url || !state.sessionId) return;
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

    $("history-older").addEventListener("click", guard(withDisabled($("history-older"), loadOlder)));

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

    const key = storedKey();
    if (key) {
      useKey(key).then((ok) => {
        if (ok) openFromLocation();
        document.body.dataset.ready = "yes";
      });
    } else {
      signedOut("");
      document.body.dataset.ready = "yes";
    }
  }

  function openFromLocation() {
    const match = /^#session=([0-9a-f-]{36})$/i.exec(location.hash);
    if (match && match[1] !== state.sessionId && state.key) openSession(match[1]);
  }

  init();
})();
