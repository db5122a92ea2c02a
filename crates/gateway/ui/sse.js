// Server-Sent Events over fetch(). The browser's EventSource cannot send an Authorization
// header, so the console reads GET /stream as a ReadableStream and parses the frames itself
// (the WHATWG event-stream rules: `field: value` lines, a blank line ends an event, `:` starts
// a comment), remembers the last `id:`, and reconnects with `Last-Event-ID` so that the
// gateway replays exactly what was missed (or says `resync_required`).

/** Incremental parser: feed text chunks, get complete events `{id, event, data}`. */
export class SseParser {
  constructor() {
    this.buf = '';
    this.reset();
    /** The last id seen (an `id:` line sets it for this and later events). */
    this.lastId = '';
  }

  reset() {
    this.event = '';
    this.data = [];
    this.sawId = false;
  }

  /** Parses a chunk; returns the events it completed, and `comment` count for keep-alives. */
  push(chunk) {
    this.buf += chunk;
    const events = [];
    let comments = 0;
    for (;;) {
      const m = /\r\n|\r|\n/.exec(this.buf);
      if (!m) break;
      // A lone \r at the very end may be the first half of \r\n: wait for more.
      if (m[0] === '\r' && m.index === this.buf.length - 1) break;
      const line = this.buf.slice(0, m.index);
      this.buf = this.buf.slice(m.index + m[0].length);
      if (line === '') {
        if (this.data.length > 0) {
          events.push({ id: this.sawId ? this.lastId : '', event: this.event || 'message', data: this.data.join('\n') });
        }
        this.reset();
        continue;
      }
      if (line.startsWith(':')) {
        comments += 1;
        continue;
      }
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'event') this.event = value;
      else if (field === 'data') this.data.push(value);
      else if (field === 'id' && !value.includes('\0')) {
        this.lastId = value;
        this.sawId = true;
      }
    }
    return { events, comments };
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * A stream that stays connected: `new EventStream({url, headers, onEvent, onState})`, then
 * `start()` / `stop()`. `onState(state, detail)`: `connecting`, `live`, `reconnecting`
 * (with the reason), `refused` (4xx: a token or scope problem, not retried), `stopped`.
 */
export class EventStream {
  constructor({ url, headers, onEvent, onState, idleMs = 40000 }) {
    this.url = url;
    this.headers = headers;
    this.onEvent = onEvent;
    this.onState = onState || (() => {});
    this.idleMs = idleMs;
    this.lastId = '';
    this.running = false;
    this.ctrl = null;
    this.events = 0;
  }

  start() {
    if (this.running) return;
    this.running = true;
    this.loop();
  }

  stop() {
    this.running = false;
    if (this.ctrl) this.ctrl.abort();
    this.onState('stopped', '');
  }

  async loop() {
    let backoff = 500;
    while (this.running) {
      this.onState('connecting', this.lastId ? `from id ${this.lastId}` : '');
      const ctrl = new AbortController();
      this.ctrl = ctrl;
      let reason = 'stream ended';
      try {
        const headers = { Accept: 'text/event-stream', ...this.headers() };
        if (this.lastId) headers['Last-Event-ID'] = this.lastId;
        const res = await fetch(this.url, { headers, signal: ctrl.signal, cache: 'no-store' });
        if (!res.ok) {
          let code = `HTTP ${res.status}`;
          try {
            const j = await res.json();
            code = `${res.status} ${j.error || j.reason || ''}${j.detail ? `: ${j.detail}` : ''}`;
          } catch {
            /* not JSON */
          }
          if (res.status >= 400 && res.status < 500) {
            this.running = false;
            this.onState('refused', code);
            return;
          }
          throw new Error(code);
        }
        backoff = 500;
        this.onState('live', '');
        await this.read(res.body, ctrl);
      } catch (e) {
        if (!this.running) return;
        reason = e && e.name === 'AbortError' ? 'no data or keep-alive for too long' : String((e && e.message) || e);
      }
      if (!this.running) return;
      this.onState('reconnecting', reason);
      await sleep(backoff);
      backoff = Math.min(backoff * 2, 10000);
    }
  }

  /** Reads frames until the body ends; aborts when the server stays silent too long. */
  async read(body, ctrl) {
    const parser = new SseParser();
    parser.lastId = this.lastId;
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let watchdog = setTimeout(() => ctrl.abort(), this.idleMs);
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        clearTimeout(watchdog);
        watchdog = setTimeout(() => ctrl.abort(), this.idleMs);
        const { events } = parser.push(value);
        for (const ev of events) {
          if (ev.id) this.lastId = ev.id;
          this.events += 1;
          let data = null;
          try {
            data = JSON.parse(ev.data);
          } catch {
            data = { raw: ev.data };
          }
          try {
            this.onEvent(ev.event, data, ev.id);
          } catch (e) {
            console.warn('event handler failed', e);
          }
        }
      }
    } finally {
      clearTimeout(watchdog);
      reader.cancel().catch(() => {});
    }
  }
}
