// What every part of the page shares: its state, the REST client, following an SSE stream
// (reconnecting with Last-Event-ID), the notice line and the connection line.

import { credentials } from "./auth.js";
import { $, show, sleep, humanSeconds } from "./dom.js";
import { SSEParser } from "./sse.js";

export const VIDEO_ID = /^[A-Za-z0-9_-]{11}$/;
export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const state = {
  sessionId: null,
  sessionTitle: "",
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
  picked: new Set(), // the videos the next question is about (none picked: all of them)
};

/** What the modules call in app.js (set there), so that they need not import it. */
export const hooks = {
  refresh: (_what) => {}, // refresh "videos", "actions" or "artifacts" soon
  sessionUpdated: (_sessionId, _update) => {}, // a session_update frame came
  signedOut: (_message) => {}, // the server refused the credentials
  videoTitle: (videoId) => videoId, // a video's title as the page shows it
  refreshVideos: async () => {}, // show the video list as the server has it now
  onlyVideo: (_videoIds) => null, // the one video a question (its video_ids, or all) was about
};

// --------------------------------------------------------------------------- notices

let noticeTimer = null;
let countdown = null;

/** The notice line under the top bar: errors stay until dismissed, information fades. */
export function notify(message, kind = "error") {
  clearInterval(countdown);
  $("notice-text").textContent = message;
  $("notice").dataset.kind = kind;
  show($("notice"), true);
  clearTimeout(noticeTimer);
  if (kind !== "error") noticeTimer = setTimeout(() => show($("notice"), false), 5000);
}

/** An error for people; a 429 says when to try again, counting down. */
export function notifyError(err, prefix = "") {
  if (err?.name === "AbortError" || err?.status === 401) return;
  const said = `${prefix}${err?.message || String(err)}`;
  const message = /[.!?]$/.test(said) ? said : `${said}.`;
  if (err?.status !== 429 || !err.retryAfter) {
    notify(message);
    return;
  }
  const until = Date.now() + err.retryAfter * 1000;
  const tick = () => {
    const left = (until - Date.now()) / 1000;
    $("notice-text").textContent =
      left > 0 ? `${message} You can try again in ${humanSeconds(left)}.` : `${message} You can try again now.`;
    if (left <= 0) clearInterval(countdown);
  };
  notify(message);
  $("notice").dataset.kind = "rate-limited";
  tick();
  countdown = setInterval(tick, 1000);
}

/** The connection line: shown while some stream has lost its connection and is reconnecting. */
const lostStreams = new Set();

export const connection = {
  lost(name) {
    lostStreams.add(name);
    $("connection-text").textContent = "Connection lost: reconnecting…";
    show($("connection"), true);
  },
  back(name) {
    if (!lostStreams.delete(name) || lostStreams.size) return;
    show($("connection"), false);
  },
  reset() {
    lostStreams.clear();
    show($("connection"), false);
  },
};

// --------------------------------------------------------------------------- REST

export class ApiError extends Error {
  constructor(status, code, message, details, retryAfter = 0) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details || {};
    this.retryAfter = retryAfter; // seconds (429, 503), from Retry-After
  }
}

export async function errorFrom(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  const error = (body && body.error) || {};
  const retryAfter = Number(response.headers.get("Retry-After")) || 0;
  if (response.status === 401) hooks.signedOut("You are signed out: your key or sign-in was not accepted.");
  return new ApiError(
    response.status,
    error.code || `HTTP_${response.status}`,
    error.message || `The server answered ${response.status}.`,
    error.details,
    retryAfter,
  );
}

/** fetch() with the credentials; a refused access token is refreshed once and the call retried. */
async function authorizedFetch(path, options) {
  await credentials.fresh();
  for (let attempt = 0; ; attempt++) {
    const response = await fetch(path, { ...options, headers: { ...options.headers, ...credentials.headers() } });
    if (response.status !== 401 || attempt > 0 || credentials.kind !== "token" || !(await credentials.renew())) {
      return response;
    }
  }
}

export async function api(path, { method = "GET", body, signal } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await authorizedFetch(path, {
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

let streamNames = 0;

/**
 * Follow an SSE URL until `onEvent` returns true (a terminal event). Reconnects like EventSource:
 * after the server's retry delay, with Last-Event-ID, so the server resends only missed events.
 * A dropped connection shows "reconnecting" (onReconnecting, and the connection line); a draining
 * server's `reconnect` event is followed silently (onToldToReconnect). Gives up on 4xx answers
 * (the stream is unknown, foreign or expired) and after repeated failures that make no progress;
 * waits a 429's or a 503's Retry-After.
 */
export async function followSSE(url, { onEvent, onReconnecting, onReconnected, onToldToReconnect, signal, lastEventId = "", maxFailures = 8 }) {
  const name = `stream-${++streamNames}`;
  let retryMs = 1000;
  let failures = 0;
  let lastId = lastEventId;
  let told = false; // the server asked us to come back (draining): no "reconnecting" for that
  let lost = false;
  const recovered = () => {
    if (!lost) return;
    lost = false;
    connection.back(name);
    onReconnected?.();
  };
  try {
    while (!signal?.aborted) {
      const headers = { Accept: "text/event-stream" };
      if (lastId) headers["Last-Event-ID"] = lastId;
      let progressed = false;
      let waitMs = null;
      try {
        const response = await authorizedFetch(url, { headers, signal, cache: "no-store" });
        if (!response.ok) {
          const error = await errorFrom(response);
          if (response.status < 500 && response.status !== 429) throw error;
          if (error.retryAfter) waitMs = error.retryAfter * 1000;
        } else {
          recovered();
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
                if (event.type === "reconnect") {
                  told = true;
                  onToldToReconnect?.();
                  continue;
                }
                told = false;
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
      if (told) told = false; // asked to come back: once, silently
      else {
        lost = true;
        connection.lost(name);
        onReconnecting?.();
      }
      await sleep(waitMs ?? retryMs, signal);
    }
  } finally {
    if (lost) connection.back(name);
  }
}

// --------------------------------------------------------------------------- event handlers

/** An async handler whose errors become notices (a 401 has signed the page out already). */
export function guard(fn) {
  return async (event) => {
    event?.preventDefault?.();
    try {
      await fn(event);
    } catch (err) {
      notifyError(err);
    }
  };
}

/** Run fn with the button disabled (no double submits). */
export function withDisabled(button, fn) {
  return async (...args) => {
    button.disabled = true;
    try {
      await fn(...args);
    } finally {
      button.disabled = false;
    }
  };
}
