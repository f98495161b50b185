// A small Markdown renderer for artifacts (the model's tables, outlines and notes). It builds DOM
// nodes with createElement / text nodes only, like the rest of the page: raw HTML in the Markdown
// is shown as the text it is, and only http(s) links become links (opening a new tab that is told
// nothing about this page). Supported: ATX headings, paragraphs, bullet and numbered lists
// (nested), GFM pipe tables, fenced code, block quotes, rules, `code`, **bold**, *italic* /
// _italic_, ~~strike~~, [links](https://…), <https://…> and bare https:// links.

import { el } from "./dom.js";

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
export function safeHref(raw) {
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
export function renderMarkdown(source) {
  const lines = String(source ?? "").replace(/\0/g, "\uFFFD").replace(/\r\n?/g, "\n").split("\n").map(mdExpandTabs);
  const fragment = document.createDocumentFragment();
  fragment.append(...mdBlocks(lines, 0));
  return fragment;
}
