// YouTube Research Tool: the browser page. Plain JavaScript, no build step, no dependencies.
//
// Safety rules this file keeps:
// - Everything the server returns (titles, channels, transcripts, summaries, model output) is put
//   in the page with textContent / createTextNode only. There is no innerHTML anywhere.
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
    state.loading = false;
    setBusy(false);
    $("video-list").replaceChildren();
    $("messages").replaceChildren();
    $("action-list").replaceChildren();
    show($("actions-more"), false);
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

  /** Refresh the videos or the actions soon, once for a burst of changes. */
  function scheduleRefresh(what) {
    const sessionId = state.sessionId;
    if (!sessionId) return;
    clearTimeout(refreshTimers[what]);
    refreshTimers[what] = setTimeout(() => {
      if (state.sessionId !== sessionId) return;
      (what === "videos" ? refreshVideos() : loadActions()).catch((err) => {
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
    await Promise.all([loadActions(), refreshVideos()]);
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
      else if (!this.cards.size && !this.sources.size && !this.body.querySelector(".limit-notice")) this.textNode.data = full;
      // Otherwise the stream and the saved text differ (they should not): keep what was shown.
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
