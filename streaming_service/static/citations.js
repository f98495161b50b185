// Links to the moment: a reply's citations as numbered chips and a Sources list, and the
// [mm:ss] timestamps in its text as links that open the video at that second (built here from a
// checked video id and second, never from a URL the server or the model wrote).

import { hooks, VIDEO_ID } from "./core.js";
import { clock, el, show } from "./dom.js";

// A timestamp the model wrote in its text: [mm:ss] or [h:mm:ss].
const TIMESTAMP = /\[(?:(\d{1,2}):)?(\d{1,2}):(\d{2})\]/g;

/**
 * The video at a second, built here from a checked id and start: the server's `url` is never
 * used as a link. null when either is not sound.
 */
export function momentUrl(videoId, start) {
  if (typeof videoId !== "string" || !VIDEO_ID.test(videoId)) return null;
  if (typeof start !== "number" || !Number.isFinite(start) || start < 0) return null;
  return `https://www.youtube.com/watch?v=${videoId}&t=${Math.floor(start)}`;
}

/** A link that opens a moment of a video in a new tab, told nothing about this page. */
export function momentLink(href, props, ...children) {
  return el("a", { ...props, href, target: "_blank", rel: "noopener noreferrer" }, ...children);
}

/**
 * The sources of one reply: its citations numbered in the order of first use, one number per
 * (video, start), and the "Sources" list shown under the reply. Titles and quotes are text.
 */
export class Sources {
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
export function replyText(body) {
  let text = "";
  for (const p of body.querySelectorAll(":scope > .message-text")) {
    for (const node of p.childNodes) if (!node.classList?.contains("cite")) text += node.textContent;
  }
  return text;
}

/**
 * Turn the [mm:ss] timestamps of a reply's text into links to that moment: of the one video it
 * cites, or of the video whose chip the timestamp follows; in a reply that cites nothing, of
 * `fallback` (the one video the question was about), if any. Others stay text. Each link says
 * which video it opens (its title and aria-label).
 */
export function linkTimestamps(body, sources, fallback = null) {
  const cited = sources.videos.size;
  const only = cited === 1 ? [...sources.videos][0] : cited === 0 && fallback && VIDEO_ID.test(fallback) ? fallback : null;
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
    if (!videoId || (sources.videos.size && !sources.videos.has(videoId))) continue;
    const seconds = h * 3600 + m * 60 + s;
    const title = [...sources.byMoment.values()].find((source) => source.videoId === videoId)?.title || hooks.videoTitle(videoId);
    const label = `${title} — ${clock(seconds)}`;
    const link = momentLink(momentUrl(videoId, seconds), { className: "timestamp-link", text: match[0], title: label, dataset: { videoId } });
    link.setAttribute("aria-label", `${match[0]}: open ${label} on YouTube`);
    parts.push(text.slice(last, match.index), link);
    last = match.index + match[0].length;
  }
  if (!parts.length) return;
  parts.push(text.slice(last));
  textNode.replaceWith(...parts.filter((part) => part !== ""));
}
