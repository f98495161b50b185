// DOM and formatting helpers shared by the page's modules.
//
// The page's one safety rule lives here: elements are made with createElement and server text is
// put in them as text nodes (el() turns every string child into a text node). There is no
// innerHTML anywhere in the page.

export const $ = (id) => document.getElementById(id);

/** createElement with properties and children; strings become text nodes (never markup). */
export function el(tag, props, ...children) {
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

export function show(node, visible) {
  node.hidden = !visible;
}

export function formatTime(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? "" : date.toLocaleString();
}

/** m:ss, or h:mm:ss from one hour on (transcript lines). */
export function formatOffset(seconds) {
  const s = Math.max(0, Math.floor(Number(seconds) || 0));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

/** mm:ss, or h:mm:ss from one hour on (as the server writes its timestamps). */
export function clock(seconds) {
  const s = Math.floor(seconds);
  const pad = (n) => String(n).padStart(2, "0");
  const h = Math.floor(s / 3600);
  const rest = `${pad(Math.floor((s % 3600) / 60))}:${pad(s % 60)}`;
  return h ? `${h}:${rest}` : rest;
}

export function humanStage(stage) {
  return stage ? String(stage).replace(/_/g, " ") : "";
}

export function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => { clearTimeout(timer); resolve(); }, { once: true });
  });
}

const BARE_INPUTS = new Set(["url", "video", "query"]); // a lone one of these is shown as it is

/**
 * A tool call's input for people: a lone link, video or query as it is, other flat inputs as
 * key=value, anything nested as JSON. Shown with textContent, like every other server value.
 */
export function inputSummary(input, width = 140) {
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
export function toolError(result) {
  if (result.error && typeof result.error === "object") return result.error;
  try {
    const saved = JSON.parse(result.content || "");
    if (saved && saved.error && typeof saved.error === "object") return saved.error;
  } catch {
    // not JSON: fall through
  }
  return { code: "TOOL_FAILED", message: result.summary || "the tool failed" };
}

/** The first `count` code points of `text` (the server counts offsets in code points). */
export function codePointPrefix(text, count) {
  if (count >= text.length) return text;
  if (!/[\uD800-\uDFFF]/.test(text)) return text.slice(0, count);
  let units = 0;
  for (let points = 0; points < count && units < text.length; points++) {
    const code = text.charCodeAt(units);
    units += code >= 0xd800 && code <= 0xdbff && units + 1 < text.length ? 2 : 1;
  }
  return text.slice(0, units);
}

/** Seconds as people say them: "45 s", "2 min", "1 min 30 s". */
export function humanSeconds(seconds) {
  const s = Math.max(0, Math.ceil(seconds));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  return s % 60 ? `${m} min ${s % 60} s` : `${m} min`;
}
