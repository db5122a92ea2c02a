// DOM helpers. Every piece of data reaches the page through textContent or an attribute set
// with setAttribute: never parsed as markup, so nothing a gateway or a client sends can inject
// elements or script.

/** The element with this id (throws if the page lacks it: a bug, better loud). */
export function $(id) {
  const e = document.getElementById(id);
  if (!e) throw new Error(`missing element #${id}`);
  return e;
}

/**
 * A new element: `el('td', {class: 'num', text: 42, data: {orderId: 'x'}}, child, …)`.
 * `text` is set as textContent; `attrs` through setAttribute; `data` as data-* attributes.
 */
export function el(tag, opts = {}, ...children) {
  const e = document.createElement(tag);
  if (opts.class) e.className = opts.class;
  if (opts.text !== undefined && opts.text !== null) e.textContent = String(opts.text);
  if (opts.title) e.title = String(opts.title);
  for (const [k, v] of Object.entries(opts.attrs || {})) e.setAttribute(k, String(v));
  for (const [k, v] of Object.entries(opts.data || {})) e.dataset[k] = String(v);
  if (opts.on) for (const [k, f] of Object.entries(opts.on)) e.addEventListener(k, f);
  for (const c of children) if (c) e.append(c);
  return e;
}

/** Sets an element's text (only when it changed: keeps the DOM quiet). */
export function setText(e, v) {
  const s = v === undefined || v === null ? '' : String(v);
  if (e.textContent !== s) e.textContent = s;
}

/** Replaces an element's children. */
export function replaceChildren(e, ...children) {
  e.replaceChildren(...children.filter(Boolean));
}

/** 1234567 → "1,234,567"; decimals as given; '–' for missing. */
export function fmtInt(v) {
  if (v === undefined || v === null || Number.isNaN(v)) return '–';
  return Math.round(v).toLocaleString('en-US');
}

/** A rate or small number: 3 significant digits. */
export function fmtNum(v) {
  if (v === undefined || v === null || Number.isNaN(v)) return '–';
  const a = Math.abs(v);
  if (a >= 1000) return fmtInt(v);
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

/** Microseconds as µs / ms / s. */
export function fmtUs(us) {
  if (us === undefined || us === null || Number.isNaN(us)) return '–';
  if (us >= 1e6) return `${(us / 1e6).toFixed(2)} s`;
  if (us >= 1e3) return `${(us / 1e3).toFixed(us >= 1e4 ? 1 : 2)} ms`;
  return `${us.toFixed(us >= 100 ? 0 : 1)} µs`;
}

/** Epoch ms → "HH:MM:SS.mmm" local time. */
export function fmtTime(ms) {
  if (!ms) return '–';
  const d = new Date(Number(ms));
  const p = (n, w = 2) => String(n).padStart(w, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

/** Seconds → "3d 4h", "2h 5m", "4m 10s", "12s". */
export function fmtDuration(sec) {
  if (sec === undefined || sec === null) return '–';
  const s = Math.floor(sec);
  if (s >= 86400) return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
  if (s >= 3600) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  if (s >= 60) return `${Math.floor(s / 60)}m ${s % 60}s`;
  return `${s}s`;
}
