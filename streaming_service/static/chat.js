// The conversation: saved messages, the reply being streamed (its text, citation chips, tool
// cards with approvals, artifacts written live), the WebSocket transport, sending, stopping and
// picking a reply up again after a reload or a dropped connection.

import { credentials } from "./auth.js";
import { ApiError, api, connection, followSSE, hooks, notify, notifyError, state, UUID } from "./core.js";
import { linkTimestamps, replyText, Sources } from "./citations.js";
import { $, codePointPrefix, el, formatTime, humanStage, inputSummary, show, toolError } from "./dom.js";
import { renderMarkdown } from "./markdown.js";
import { artifactKind } from "./panels.js";

const PENDING_STORAGE = "ytr.pendingReply";
export const TOOLS_MODES = ["auto", "confirm", "off"];
const MUTATING_TOOLS = new Set(["add_video", "add_playlist", "remove_video", "organize_videos"]);
const HISTORY_PAGE_SIZE = 20;
// Streamed text comes in bursts (the server's checkpoints, about every 0.5 s): see Reply.receive.
const BURST_GAP_MS = 50; // tokens this close together are one burst
const reducedMotion = window.matchMedia("(prefers-reduced-motion: reduce)");
const WORDS = typeof Intl.Segmenter === "function" ? new Intl.Segmenter(undefined, { granularity: "word" }) : null;

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
  linkTimestamps(body, sources, hooks.onlyVideo(message.video_ids));
  return body;
}

/** "About: <titles>" under a question limited to some of the session's videos. */
function scopeLine(videoIds) {
  if (!Array.isArray(videoIds) || !videoIds.length) return null;
  const titles = videoIds.map((id) => hooks.videoTitle(String(id)));
  return el("p", { className: "message-scope muted", dataset: { videoIds: videoIds.join(" ") }, text: `About: ${titles.join(", ")}` });
}

export function messageItem(message) {
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
    message.role === "user" ? scopeLine(message.video_ids) : null,
    messageBody(message, sources),
    sources.node,
  );
  return li;
}

export function nearBottom(box) {
  return box.scrollHeight - box.scrollTop - box.clientHeight < 80;
}

export function scrollToEnd(box) {
  box.scrollTop = box.scrollHeight;
}

export async function loadHistory(sessionId, signal) {
  try {
    const page = await api(`/v1/sessions/${sessionId}/messages?limit=${HISTORY_PAGE_SIZE}`, { signal });
    // Pages come newest first; show the conversation oldest to newest.
    $("messages").replaceChildren(...page.items.slice().reverse().map(messageItem));
    state.historyCursor = page.next_cursor;
    show($("history-older"), Boolean(page.has_more));
    scrollToEnd($("messages"));
  } catch (err) {
    if (!signal?.aborted) notifyError(err, "Could not load the history: ");
  }
}

export async function loadOlder() {
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

// --------------------------------------------------------------------------- chat

export function setBusy(busy) {
  $("messages").setAttribute("aria-busy", busy ? "true" : "false");
  $("chat-send").disabled = busy;
  $("chat-stop").disabled = !busy;
  for (const radio of document.querySelectorAll('input[name="transport"]')) radio.disabled = busy;
}

export function transport() {
  return $("transport-ws").checked ? "ws" : "sse";
}

/** Signed out: no reply is to be picked up again in this tab. */
export function forgetAllPending() {
  sessionStorage.removeItem(PENDING_STORAGE);
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

export function toolsMode() {
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

/**
 * Screen readers hear a streaming reply politely, a sentence at a time: finished sentences go to
 * the #reply-live region (aria-live="polite"); announcing each 30 ms token delta would be noise.
 * It is fed the text as it is received, not as the reply reveals it (Reply.receive): the reveal
 * is a visual effect, and a sentence is read once all of it has come, with no added wait.
 */
const announcer = {
  buffer: "",
  start() {
    this.buffer = "";
    $("reply-live").replaceChildren();
  },
  feed(text) {
    this.buffer += text;
    const ends = [...this.buffer.matchAll(/[.!?…:](?=\s)|\n/g)];
    if (!ends.length) return;
    const cut = ends[ends.length - 1].index + 1;
    this.say(this.buffer.slice(0, cut));
    this.buffer = this.buffer.slice(cut);
  },
  end(note) {
    this.say(this.buffer);
    this.buffer = "";
    if (note) this.say(note);
  },
  say(text) {
    const words = text.replace(/\s+/g, " ").trim();
    if (!words) return;
    const region = $("reply-live");
    region.append(el("p", { text: words }));
    while (region.childElementCount > 6) region.firstElementChild.remove();
  },
};

/**
 * The shortest start of `text` made of whole words (and the spaces and punctuation between them)
 * that is at least `count` long: never part of a grapheme (without Intl.Segmenter, of a code point).
 */
function leadingWords(text, count) {
  let end = 0;
  for (const piece of WORDS ? WORDS.segment(text) : text.match(/\s+|\S+/gu) || []) {
    end += (piece.segment ?? piece).length;
    if (end >= count) break;
  }
  return text.slice(0, end);
}

/** One assistant reply being streamed into the history list. */
class Reply {
  constructor(sessionId, fallbackVideo = null) {
    this.sessionId = sessionId;
    this.fallbackVideo = fallbackVideo; // the one video the question was about: its timestamps link there
    this.requestId = null;
    this.lastEventId = "";
    this.finished = false;
    this.stopRequested = false;
    this.abort = new AbortController();
    this.textNode = null; // the text node being written (null after a citation chip)
    this.para = null; // the text paragraph being written
    // The smooth reveal (see receive): text and citation chips received but not shown yet.
    this.queue = []; // strings, and functions that show what came after that text (a chip)
    this.frame = 0;
    this.frameAt = 0; // when the last frame revealed some
    this.tokenAt = -Infinity; // when the last token came
    this.burstAt = -Infinity; // when the current burst began
    this.gap = 500; // the time between bursts, ms (measured)
    this.dueAt = 0; // when what is queued should all be shown
    this.atOnce = true; // the next burst is shown as it comes (the first one, a catch-up)
    this.revealing = false; // the current burst is revealed frame by frame
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

  /**
   * Streamed text, revealed smoothly. The server sends text in bursts (its checkpoints, about
   * every 0.5 s); a burst is shown a few whole words an animation frame, so that all of it is
   * shown by about when the next one is expected: 0.9 × the measured gap between bursts, the gap
   * held to 0.1–1 s, so no text waits more than 0.9 s after it came. Shown as it comes: the first
   * burst (the first text, or all of a reply picked up after a reload), the first after a
   * reconnect, everything once Stop was pressed, and everything with prefers-reduced-motion.
   * `flush` shows everything received.
   */
  receive(text) {
    if (!text) return;
    const now = performance.now();
    if (now - this.tokenAt > BURST_GAP_MS) {
      const gap = Math.min(Math.max(now - this.burstAt, 100), 1000);
      if (this.burstAt > -Infinity) this.gap += (gap - this.gap) / 2;
      this.burstAt = now;
      this.dueAt = now + 0.9 * this.gap;
      this.revealing = !this.atOnce;
      this.atOnce = false;
    }
    this.tokenAt = now;
    if (!this.revealing || this.stopRequested || reducedMotion.matches) {
      this.flush();
      this.appendText(text);
      return;
    }
    const last = this.queue.length - 1;
    if (typeof this.queue[last] === "string") this.queue[last] += text;
    else this.queue.push(text);
    if (!this.frame) {
      this.frameAt = now;
      this.frame = requestAnimationFrame((time) => this.reveal(time));
    }
  }

  /** `show` runs once the text received before it is shown (a chip leads the text after it). */
  later(show) {
    if (this.queue.length) this.queue.push(show);
    else show();
  }

  /** One frame: a share of what is queued, so that it is all shown at `dueAt`. */
  reveal(time) {
    this.frame = 0;
    const box = $("messages");
    const follow = nearBottom(box);
    const elapsed = Math.max(time - this.frameAt, 1);
    const queued = this.queue.reduce((n, item) => n + (typeof item === "string" ? item.length : 0), 0);
    let budget = Math.ceil((queued * elapsed) / (elapsed + Math.max(this.dueAt - time, 0)));
    this.frameAt = time;
    while (this.queue.length && (budget > 0 || typeof this.queue[0] === "function")) {
      const head = this.queue[0];
      if (typeof head === "function") {
        this.queue.shift();
        head();
      } else {
        const words = leadingWords(head, budget);
        this.appendText(words);
        budget -= words.length;
        if (words.length === head.length) this.queue.shift();
        else this.queue[0] = head.slice(words.length);
      }
    }
    if (this.queue.length) this.frame = requestAnimationFrame((next) => this.reveal(next));
    if (follow) scrollToEnd(box);
  }

  /** Show everything received at once (the reply ended or stopped, something else came, a reconnect). */
  flush() {
    cancelAnimationFrame(this.frame);
    this.frame = 0;
    for (const item of this.queue.splice(0)) {
      if (typeof item === "function") item();
      else this.appendText(item);
    }
  }

  /** A reconnect: what was received is shown, and the catch-up that follows as it comes. */
  caughtUp() {
    this.flush();
    this.atOnce = true;
    this.tokenAt = -Infinity;
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
      hooks.refresh("artifacts");
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
    // Text and its chips may wait for the reveal; anything else shows after all that came before.
    if (type !== "token" && type !== "citation") this.flush();
    const box = $("messages");
    const follow = nearBottom(box);
    if (type === "stage") {
      const pending = data.pending_video_ids || [];
      this.note.textContent = pending.length
        ? `Generating… (still processing: ${pending.join(", ")})`
        : "Generating…";
    } else if (type === "token") {
      this.receive(String(data.text || ""));
      this.item.dataset.tokens = "yes";
      if (state.reply === this) announcer.feed(String(data.text || ""));
    } else if (type === "citation") {
      this.later(() => this.cite(data));
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
      hooks.refresh("actions");
      // Over SSE no session_update comes: a call that changed the videos refreshes the list.
      if (data.ok && MUTATING_TOOLS.has(String(data.name || card.node.dataset.tool))) hooks.refresh("videos");
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
    this.flush();
    if (typeof data.text === "string") this.settleText(data.text);
    linkTimestamps(this.body, this.sources, this.fallbackVideo);
    for (const card of this.cards.values()) card.abandon();
    if (this.cards.size) hooks.refresh("actions");
    for (const live of this.artifacts.values()) live?.unfinished();
    if (this.artifacts.size || [...this.cards.values()].some((card) => /artifact/.test(card.node.dataset.tool))) {
      hooks.refresh("artifacts");
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
    if (state.reply === this) announcer.end(type === "complete" ? "" : this.note.textContent);
    forgetPending(this.requestId);
    this.resolveDone();
  }

  fail(message) {
    if (!this.finished) this.finish("error", { message });
  }

  stop() {
    this.flush();
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
          this.caughtUp();
          if (!this.finished) this.note.textContent = "Connection lost; reconnecting…";
        },
        onToldToReconnect: () => this.caughtUp(),
        onReconnected: () => {
          if (!this.finished) this.note.textContent = "Reconnected; generating…";
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
export class ChatSocket {
  constructor(sessionId) {
    this.sessionId = sessionId;
    this.ws = null;
    this.ready = null;
    this.reply = null;
    this.told = false; // the server asked us to reconnect (it is draining)
    this.closed = false; // closed by the page: not to be reopened
    this.failures = 0;
    this.name = `socket-${sessionId}`;
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
      ws.addEventListener("open", () => ws.send(JSON.stringify(credentials.authFrame())));
      ws.addEventListener("message", (message) => {
        let frame;
        try {
          frame = JSON.parse(message.data);
        } catch {
          return;
        }
        if (frame.type === "ready") {
          opened = true;
          this.told = false;
          this.failures = 0;
          connection.back(this.name);
          resolve();
        } else this.frame(frame);
      });
      ws.addEventListener("close", (event) => {
        this.ready = null;
        if (this.ws === ws) this.ws = null;
        if (!opened) {
          reject(new ApiError(0, "WEBSOCKET_CLOSED", event.reason || "Could not open the WebSocket."));
        } else this.lost();
        if (event.code !== 1008) this.reopenLater(); // 1008: credentials refused, nothing to retry
      });
    });
    this.ready.catch(() => {});
    return this.ready;
  }

  /**
   * Open it again after it dropped (session updates come over it between replies too): soon
   * after a draining server's `reconnect`, else with a growing delay, saying "reconnecting".
   */
  reopenLater() {
    if (this.closed || state.socket !== this) return;
    this.failures = (this.failures || 0) + 1;
    if (this.failures > 8) return;
    if (!this.told) connection.lost(this.name);
    const delay = this.told ? 100 : Math.min(1000 * 2 ** (this.failures - 1), 15000);
    setTimeout(() => {
      if (this.closed || state.socket !== this || this.ws) return;
      this.open().catch(() => {});
    }, delay);
  }

  async send(reply, message, videoIds) {
    await this.open();
    this.reply = reply;
    const frame = { type: "message", content: message, tools: toolsMode() };
    if (videoIds) frame.video_ids = videoIds;
    this.ws.send(JSON.stringify(frame));
  }

  cancel() {
    if (this.isOpen()) this.ws.send(JSON.stringify({ type: "cancel" }));
  }

  frame(frame) {
    const reply = this.reply;
    if (frame.type === "ping" || frame.type === "pong") return;
    if (frame.type === "reconnect") this.told = true;
    if (frame.type === "session_update") {
      hooks.sessionUpdated(this.sessionId, frame);
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
      // A draining server (told above): the socket closes next and lost() resumes over SSE, silently.
      reply.caughtUp();
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
    reply.caughtUp();
    if (reply.requestId) {
      if (!this.told) reply.note.textContent = "Connection lost; resuming…";
      reply.follow();
    } else {
      reply.fail("The connection closed before the server accepted the message; check the history.");
    }
  }

  close() {
    this.closed = true;
    connection.back(this.name);
    this.reply = null;
    const ws = this.ws;
    this.ws = null;
    this.ready = null;
    if (ws && ws.readyState <= WebSocket.OPEN) ws.close(1000, "closing");
  }
}

function userItem(text, videoIds) {
  const now = new Date().toISOString();
  return messageItem({ id: "", role: "user", status: "complete", content: text, created_at: now, video_ids: videoIds });
}

/** Ask: the question is shown at once, the reply streams under it (SSE or the WebSocket). */
export async function sendMessage(text) {
  const sessionId = state.sessionId;
  if (!sessionId || state.reply || state.loading) return;
  const box = $("messages");
  const videoIds = state.picked.size ? [...state.picked] : null; // none picked: every video
  const question = userItem(text, videoIds);
  const reply = new Reply(sessionId, hooks.onlyVideo(videoIds));
  reply.transport = transport();
  state.reply = reply;
  setBusy(true);
  announcer.start();
  box.append(question, reply.item);
  scrollToEnd(box);
  $("chat-input").value = "";
  state.view?.signal.addEventListener("abort", () => reply.abort.abort(), { once: true });
  try {
    if (reply.transport === "ws") {
      if (!state.socket) state.socket = new ChatSocket(sessionId);
      await state.socket.send(reply, text, videoIds);
    } else {
      const started = await api(`/v1/sessions/${sessionId}/chat`, {
        method: "POST",
        body: videoIds ? { message: text, video_ids: videoIds, tools: toolsMode() } : { message: text, tools: toolsMode() },
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
      if (!reply.abort.signal.aborted) notifyError(err, "Not sent: ");
    } else reply.fail(err.message);
  } finally {
    if (state.reply === reply) {
      state.reply = null;
      setBusy(false);
    }
  }
}

/** After a reload: if a reply was streaming in this tab, pick it up from the start. */
export async function resumePendingReply(sessionId, signal) {
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
  const reply = new Reply(sessionId, hooks.onlyVideo(null));
  reply.transport = "sse";
  reply.requestId = pending.requestId;
  reply.item.dataset.requestId = pending.requestId;
  state.reply = reply;
  setBusy(true);
  announcer.start();
  $("messages").append(reply.item);
  signal.addEventListener("abort", () => reply.abort.abort(), { once: true });
  reply.follow();
  await reply.done;
  if (state.reply === reply) {
    state.reply = null;
    setBusy(false);
  }
}
