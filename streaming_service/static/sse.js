// Reading text/event-stream from fetch(): the parser. Why fetch() and not EventSource: EventSource
// cannot send request headers, the server authenticates with a header (X-API-Key or
// Authorization), and credentials must never be put in a URL (URLs end up in logs, history and
// Referer headers). core.js's followSSE does the rest of what EventSource does natively.

/** Incremental text/event-stream parser (the WHATWG "interpret an event stream" rules). */
export class SSEParser {
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
