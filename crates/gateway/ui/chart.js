// Line charts drawn by hand on <canvas>: a time window of samples, several series, linear or
// log10 y axis, grid and tick labels, crisp on high-DPI screens. No library, no build step.

export const PALETTE = ['#4fc3f7', '#ffb74d', '#ef5350', '#81c784', '#ba68c8', '#90a4ae'];

const GRID = 'rgba(255,255,255,0.07)';
const AXIS_TEXT = '#7d8794';
const FONT = '10px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace';

export class LineChart {
  /**
   * @param canvas  the <canvas>
   * @param opts    {series: [names], windowSec = 300, log = false, format = (v) => string}
   */
  constructor(canvas, { series, windowSec = 300, log = false, format = (v) => String(v) }) {
    this.canvas = canvas;
    this.series = series;
    this.windowMs = windowSec * 1000;
    this.log = log;
    this.format = format;
    /** [{t, values: [number|null]}], oldest first */
    this.points = [];
    this.pending = false;
    new ResizeObserver(() => this.draw()).observe(canvas);
  }

  /** Adds a sample (values in series order; null = no value) and redraws on the next frame. */
  push(t, values) {
    this.points.push({ t, values });
    const from = t - this.windowMs;
    while (this.points.length > 2 && this.points[0].t < from) this.points.shift();
    this.canvas.dataset.points = String(this.points.length);
    if (!this.pending) {
      this.pending = true;
      requestAnimationFrame(() => {
        this.pending = false;
        this.draw();
      });
    }
  }

  clear() {
    this.points = [];
    this.canvas.dataset.points = '0';
    this.draw();
  }

  /** The latest value of each series. */
  latest() {
    const last = this.points[this.points.length - 1];
    return last ? last.values : this.series.map(() => null);
  }

  draw() {
    const c = this.canvas;
    const dpr = window.devicePixelRatio || 1;
    const w = c.clientWidth;
    const h = c.clientHeight;
    if (w === 0 || h === 0) return;
    if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) {
      c.width = Math.round(w * dpr);
      c.height = Math.round(h * dpr);
    }
    const g = c.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    g.font = FONT;

    const pad = { l: 54, r: 8, t: 8, b: 18 };
    const pw = w - pad.l - pad.r;
    const ph = h - pad.t - pad.b;
    const now = this.points.length ? this.points[this.points.length - 1].t : Date.now();
    // The x axis spans the data (at least a minute), up to the window: a fresh console shows
    // its first seconds wide, not squeezed into the right edge.
    const first = this.points.length ? this.points[0].t : now;
    const span = Math.min(this.windowMs, Math.max(60000, now - first));
    const t0 = now - span;

    // y range over what is visible
    let lo = Infinity;
    let hi = -Infinity;
    for (const p of this.points) {
      for (const v of p.values) {
        if (v === null || v === undefined || !Number.isFinite(v)) continue;
        if (this.log && v <= 0) continue;
        lo = Math.min(lo, v);
        hi = Math.max(hi, v);
      }
    }
    let ticks;
    let ymap;
    if (this.log) {
      if (!Number.isFinite(lo)) {
        lo = 1;
        hi = 1000;
      }
      const a = Math.floor(Math.log10(lo));
      let b = Math.ceil(Math.log10(hi));
      if (b <= a) b = a + 1;
      ticks = [];
      for (let e = a; e <= b; e++) ticks.push(10 ** e);
      ymap = (v) => pad.t + ph - ((Math.log10(v) - a) / (b - a)) * ph;
    } else {
      if (!Number.isFinite(hi) || hi <= 0) hi = 1;
      const step = niceStep(hi / 4);
      const top = Math.max(step, Math.ceil(hi / step) * step);
      ticks = [];
      for (let v = 0; v <= top + step / 2; v += step) ticks.push(v);
      ymap = (v) => pad.t + ph - (v / top) * ph;
    }
    const xmap = (t) => pad.l + ((t - t0) / span) * pw;

    // grid and y labels
    g.strokeStyle = GRID;
    g.fillStyle = AXIS_TEXT;
    g.lineWidth = 1;
    g.textAlign = 'right';
    g.textBaseline = 'middle';
    for (const v of ticks) {
      const y = Math.round(ymap(v)) + 0.5;
      g.beginPath();
      g.moveTo(pad.l, y);
      g.lineTo(pad.l + pw, y);
      g.stroke();
      g.fillText(this.format(v), pad.l - 6, y);
    }
    // x labels: back from now, at most 6 steps of 10 s … 1 min
    g.textAlign = 'center';
    g.textBaseline = 'top';
    const step = [10000, 15000, 30000, 60000].find((ms) => span / ms <= 6) || 60000;
    for (let back = 0; back <= span + 1; back += step) {
      const x = xmap(now - back);
      g.beginPath();
      g.moveTo(Math.round(x) + 0.5, pad.t);
      g.lineTo(Math.round(x) + 0.5, pad.t + ph);
      g.stroke();
      const label = back === 0 ? 'now' : back % 60000 === 0 ? `-${back / 60000}m` : `-${back / 1000}s`;
      g.fillText(label, Math.min(Math.max(x, pad.l + 10), pad.l + pw - 12), pad.t + ph + 4);
    }

    // series
    g.lineWidth = 1.5;
    g.lineJoin = 'round';
    this.series.forEach((_, i) => {
      g.strokeStyle = PALETTE[i % PALETTE.length];
      g.beginPath();
      let pen = false;
      for (const p of this.points) {
        const v = p.values[i];
        if (v === null || v === undefined || !Number.isFinite(v) || (this.log && v <= 0)) {
          pen = false;
          continue;
        }
        const x = xmap(p.t);
        const y = ymap(v);
        if (pen) g.lineTo(x, y);
        else g.moveTo(x, y);
        pen = true;
      }
      g.stroke();
      // the latest point as a dot
      const last = this.points[this.points.length - 1];
      const v = last && last.values[i];
      if (v !== null && v !== undefined && Number.isFinite(v) && !(this.log && v <= 0)) {
        g.fillStyle = PALETTE[i % PALETTE.length];
        g.beginPath();
        g.arc(xmap(last.t), ymap(v), 2.5, 0, Math.PI * 2);
        g.fill();
      }
    });
  }
}

/** 1, 2, 2.5 or 5 times a power of ten, at least `raw`. */
function niceStep(raw) {
  const p = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= raw) return m * p;
  return 10 * p;
}
