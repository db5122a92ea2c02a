// The operations console: login, live blotter over SSE, charts, rejects, kill switches,
// journal and audit chain, venue sessions. Everything shown comes from the gateway's own
// endpoints; every piece of data goes into the page as text (see dom.js).

import { $, el, setText, fmtInt, fmtNum, fmtUs, fmtTime, fmtDuration } from './dom.js';
import { creds, claims, hasScope, call, authHeaders } from './api.js';
import { EventStream } from './sse.js';
import { LineChart } from './chart.js';
import { parseProm, byLabel } from './prom.js';

const MAX_ORDERS = 2000;
const MAX_FILLS = 500;
const FINAL = new Set(['FILLED', 'CANCELED', 'REJECTED', 'EXPIRED']);

const st = {
  claims: null,
  ops: false,
  stream: null,
  timers: [],
  busy: new Set(),
  orders: new Map(), // orderId → {data, row, cells}
  accounts: new Set(), // accounts seen on the stream
  fills: 0,
  events: 0,
  prev: null, // previous /stats sample for rates
  rejects: [], // [{t, counts}] over the last minute
  kill: null,
  anchorSeq: 0,
  health: null,
};

// ---------------------------------------------------------------------------------------------
// charts

const latencySeries = ['durable ack p50', 'durable ack p99', 'durable ack p999', 'v3 ack p99', 'fdatasync p99', 'accept→sent p99'];
const throughputSeries = ['accepted', 'rejected', 'venue reports', 'journal records'];
let latencyChart;
let throughputChart;

function legend(id, names) {
  const box = $(id);
  const values = names.map((name, i) => {
    const b = el('b', { text: '–' });
    box.append(el('span', {}, el('i', { class: `c${i}` }), document.createTextNode(name), b));
    return b;
  });
  return (vals, fmt) => vals.forEach((v, i) => setText(values[i], v === null || v === undefined ? '–' : fmt(v)));
}
let latencyLegend;
let throughputLegend;

// ---------------------------------------------------------------------------------------------
// small UI helpers

function toast(text, kind = '') {
  const t = el('div', { class: `toast ${kind}`, text });
  $('toasts').append(t);
  setTimeout(() => t.remove(), kind === 'bad' ? 8000 : 4000);
}

function banner(text, kind = '') {
  const b = $('banner');
  b.className = `banner ${kind}`;
  setText(b, text);
  b.hidden = !text;
}

function pill(id, text, kind, title = '') {
  const p = $(id);
  setText(p, text);
  p.className = `pill ${kind}`;
  p.title = title;
}

/** The in-page confirmation step: resolves {ok, note}. */
function confirmDialog(title, text) {
  const d = $('confirm');
  setText($('confirm-title'), title);
  setText($('confirm-text'), text);
  $('confirm-note').value = '';
  d.returnValue = '';
  return new Promise((resolve) => {
    const done = () => {
      d.removeEventListener('close', done);
      resolve({ ok: d.returnValue === 'confirm', note: $('confirm-note').value.trim() });
    };
    d.addEventListener('close', done);
    d.showModal();
    $('confirm-cancel').focus();
  });
}

/** Runs `fn` unless the previous run of `key` is still in flight. */
async function once(key, fn) {
  if (st.busy.has(key)) return;
  st.busy.add(key);
  try {
    await fn();
  } finally {
    st.busy.delete(key);
  }
}

function every(ms, fn) {
  fn();
  st.timers.push(setInterval(fn, ms));
}

// ---------------------------------------------------------------------------------------------
// login / logout

function showIdentity() {
  const c = st.claims || {};
  const account = c.accountId || c.sub || '?';
  setText($('who'), account);
  setText($('who-scope'), st.ops ? 'ops' : '');
  $('login-form').hidden = true;
  $('identity').hidden = false;
}

function updateExpiry() {
  const exp = st.claims && st.claims.exp;
  if (!exp) return setText($('who-exp'), '');
  const left = exp - Date.now() / 1000;
  const e = $('who-exp');
  if (left <= 0) {
    setText(e, 'token expired');
    e.className = 'bad';
  } else {
    setText(e, `expires in ${fmtDuration(left)}`);
    e.className = left < 300 ? 'warn' : 'muted';
  }
}

function login(ev) {
  ev.preventDefault();
  const token = $('token').value.trim().replace(/^Bearer\s+/i, '');
  const metrics = $('metrics-token').value.trim();
  if (!token) return toast('Paste a JWT first.', 'bad');
  if (!claims(token)) return toast('That is not a JWT (header.payload.signature).', 'bad');
  creds.save(token, metrics);
  $('token').value = '';
  $('metrics-token').value = '';
  startSession();
}

function logout() {
  stopSession();
  creds.clear();
  resetData();
  $('identity').hidden = true;
  $('login-form').hidden = false;
  banner('');
  $('token').focus();
}

function startSession() {
  st.claims = claims(creds.token);
  st.ops = hasScope(st.claims, 'ops');
  showIdentity();
  banner('');
  startStream();
  every(1000, () => once('stats', pollStats));
  every(1000, () => once('health', pollHealth));
  every(1000, () => once('metrics', pollMetrics));
  every(1000, updateExpiry);
  every(5000, () => once('anchor', pollAnchor));
  $('kill-note').hidden = st.ops;
  $('kill-body').hidden = !st.ops;
  if (st.ops) every(2000, () => once('kill', pollKill));
  else setText($('kill-note'), 'Kill switches need a token with scope "ops".');
}

function stopSession() {
  if (st.stream) st.stream.stop();
  st.stream = null;
  st.timers.forEach(clearInterval);
  st.timers = [];
}

function resetData() {
  st.orders.clear();
  st.accounts.clear();
  $('blotter-body').replaceChildren();
  $('fills-body').replaceChildren();
  st.fills = 0;
  st.events = 0;
  st.prev = null;
  st.rejects = [];
  latencyChart.clear();
  throughputChart.clear();
  updateCounts();
}

// ---------------------------------------------------------------------------------------------
// the stream and the blotter

function startStream() {
  const url = st.ops ? '/stream?scope=all' : '/stream';
  setText($('blotter-scope'), st.ops ? 'all accounts' : 'own account');
  st.stream = new EventStream({
    url,
    headers: () => authHeaders(),
    onEvent,
    onState: (s, detail) => {
      if (s === 'live') pill('stream-pill', 'stream live', 'ok', url);
      else if (s === 'connecting') pill('stream-pill', 'stream connecting', 'warn', detail);
      else if (s === 'reconnecting') pill('stream-pill', 'stream reconnecting', 'warn', detail);
      else if (s === 'refused') {
        pill('stream-pill', 'stream refused', 'bad', detail);
        banner(`The gateway refused the stream: ${detail}. Log in with another token.`);
      } else pill('stream-pill', 'stream off', '', '');
    },
  });
  st.stream.start();
}

function onEvent(name, data) {
  st.events += 1;
  setText($('k-events'), fmtInt(st.events));
  switch (name) {
    case 'ready':
      if (data.accountId) setText($('blotter-scope'), `account ${data.accountId}`);
      break;
    case 'order_update':
    case 'order_snapshot':
      if (data && data.orderId) upsertOrder(data);
      break;
    case 'order_durable':
      if (data && data.orderId) upsertOrder({ orderId: data.orderId, durable: true, durableLatencyUs: data.durableLatencyUs });
      break;
    case 'execution_report':
      if (data && data.orderId) addFill(data);
      break;
    case 'resync_required':
      banner(
        `Stream resync (${data.reason || 'reconnect'}): events after id ${data.lastEventId} may be missing from the blotter` +
          (data.eventsEndpoint ? ` (re-read ${data.eventsEndpoint})` : '') + '. It continues live.',
        'info',
      );
      break;
    default:
      break;
  }
}

const COLS = ['orderId', 'clientOrderId', 'accountId', 'symbol', 'side', 'type', 'qty', 'price', 'status', 'filledQty', 'venue', 'durable', 'lastUpdateAt'];
const NUMERIC = new Set(['qty', 'price', 'filledQty']);

function upsertOrder(o) {
  let e = st.orders.get(o.orderId);
  if (!e) {
    const cells = {};
    const row = el('tr', { data: { orderId: o.orderId } });
    for (const c of COLS) {
      cells[c] = el('td', { class: NUMERIC.has(c) ? 'num' : '' });
      row.append(cells[c]);
    }
    e = { data: {}, row, cells };
    st.orders.set(o.orderId, e);
    if (st.orders.size > MAX_ORDERS) {
      const oldest = $('blotter-body').lastElementChild;
      if (oldest) {
        st.orders.delete(oldest.dataset.orderId);
        oldest.remove();
      }
    }
  }
  Object.assign(e.data, o);
  if (o.accountId && !st.accounts.has(o.accountId)) {
    st.accounts.add(o.accountId);
    if (st.kill) renderKill();
  }
  renderOrder(e);
  const body = $('blotter-body');
  if (body.firstElementChild !== e.row) body.prepend(e.row);
  e.row.classList.remove('flash');
  void e.row.offsetWidth; // restart the animation
  e.row.classList.add('flash');
  updateCounts();
}

function renderOrder(e) {
  const d = e.data;
  const c = e.cells;
  setText(c.orderId, d.orderId);
  setText(c.clientOrderId, d.clientOrderId || '');
  setText(c.accountId, d.accountId || '');
  setText(c.symbol, d.symbol || '');
  setText(c.side, d.side || '');
  c.side.className = d.side || '';
  setText(c.type, [d.type, d.timeInForce].filter(Boolean).join(' '));
  setText(c.qty, d.qty !== undefined ? fmtInt(d.qty) : '');
  setText(c.price, d.price ? fmtInt(d.price) : d.type === 'MARKET' ? 'MKT' : '');
  setText(c.status, d.status || '');
  c.status.className = `st ${d.status || ''}`;
  setText(c.filledQty, d.filledQty !== undefined ? fmtInt(d.filledQty) : '');
  setText(c.venue, d.venue || '');
  setText(c.durable, d.durable ? 'yes' : d.status ? 'no' : '');
  c.durable.className = d.durable ? 'dur-yes' : 'dur-no';
  if (d.durableLatencyUs !== undefined) c.durable.title = `durable after ${fmtUs(d.durableLatencyUs)}`;
  setText(c.lastUpdateAt, fmtTime(d.lastUpdateAt || Date.now()));
  e.row.hidden = !matches(d);
}

function matches(d) {
  const status = $('blotter-status').value;
  if (status === 'open' && FINAL.has(d.status)) return false;
  if (status === 'final' && !FINAL.has(d.status)) return false;
  const q = $('blotter-filter').value.trim().toLowerCase();
  if (!q) return true;
  return ['orderId', 'clientOrderId', 'accountId', 'symbol', 'venue', 'status'].some((k) => String(d[k] || '').toLowerCase().includes(q));
}

function refilter() {
  for (const e of st.orders.values()) e.row.hidden = !matches(e.data);
  updateCounts();
}

function updateCounts() {
  let open = 0;
  for (const e of st.orders.values()) if (!FINAL.has(e.data.status)) open += 1;
  setText($('blotter-count'), `${fmtInt(st.orders.size)} orders · ${fmtInt(open)} open`);
  $('blotter-empty').hidden = st.orders.size > 0;
  setText($('fills-count'), `${fmtInt(st.fills)} reports`);
  $('fills-empty').hidden = st.fills > 0;
}

function addFill(r) {
  st.fills += 1;
  const fill = Number(r.filledQtyDelta) > 0;
  const known = st.orders.get(r.orderId);
  const qty = r.qty || (known && known.data.qty);
  const row = el(
    'tr',
    { class: fill ? 'fill' : '', data: { orderId: r.orderId } },
    el('td', { text: fmtTime(Date.now()) }),
    el('td', { text: r.orderId }),
    el('td', { text: r.accountId || '' }),
    el('td', { text: r.venue || '' }),
    el('td', { class: 'num', text: r.venueSeq !== undefined ? fmtInt(r.venueSeq) : '' }),
    el('td', { class: `st ${r.status || ''}`, text: r.status || '', title: r.reason || '' }),
    el('td', { class: 'num qty', text: fill ? fmtInt(r.filledQtyDelta) : '' }),
    el('td', { class: 'num', text: r.price ? fmtInt(r.price) : '' }),
    el('td', { class: 'num', text: `${fmtInt(r.filledQtyTotal || 0)} / ${qty ? fmtInt(qty) : '–'}` }),
  );
  const body = $('fills-body');
  body.prepend(row);
  while (body.childElementCount > MAX_FILLS) body.lastElementChild.remove();
  if (known && r.venue && !known.data.venue) {
    known.data.venue = r.venue;
    renderOrder(known);
  }
  updateCounts();
}

// ---------------------------------------------------------------------------------------------
// /stats, /health, /metrics

function sumOf(s, keys) {
  return keys.reduce((a, k) => a + (Number(s[k]) || 0), 0);
}

async function pollStats() {
  const r = await call('/stats', { metrics: true });
  if (r.status === 401 && r.error === 'INVALID_METRICS_TOKEN') {
    banner('/stats and /metrics need the metrics token (GATEWAY_METRICS_TOKEN): log out and enter it.');
    return;
  }
  if (!r.ok || !r.json) return;
  const s = r.json;
  const t = Date.now();
  const counters = {
    accepted: sumOf(s, ['gateway_v3_accepted_total', 'gateway_orders_volatile_total', 'gateway_orders_local_total', 'gateway_orders_replicated_total']),
    rejected: sumOf(s, ['gateway_v3_rejected_soft_total', 'gateway_v3_rejected_hard_total', 'gateway_v3_rejected_killed_total', 'gateway_v3_rejected_client_total', 'gateway_orders_refused_total']),
    reports: (s.venues || []).reduce((a, v) => a + (Number(v.reports) || 0), 0),
    journal: Number(s.gateway_journal_records_total) || 0,
  };
  const prev = st.prev;
  st.prev = { t, counters };
  const lat = [
    s.gateway_durable_ack_p50_us,
    s.gateway_durable_ack_p99_us,
    s.gateway_durable_ack_p999_us,
    s.gateway_live_ack_p99_us,
    s.gateway_fdatasync_p99_us,
    s.gateway_order_accept_to_sent_p99_us,
  ].map((v) => (Number(v) > 0 ? Number(v) : null));
  latencyChart.push(t, lat);
  latencyLegend(lat, fmtUs);
  if (prev && t > prev.t) {
    const dt = (t - prev.t) / 1000;
    const rate = (k) => Math.max(0, (counters[k] - prev.counters[k]) / dt);
    const tp = [rate('accepted'), rate('rejected'), rate('reports'), rate('journal')];
    throughputChart.push(t, tp);
    throughputLegend(tp, fmtNum);
    setText($('k-accepted'), fmtNum(tp[0]));
    setText($('k-rejected'), fmtNum(tp[1]));
    $('k-rejected').className = tp[1] > 0 ? 'warn' : '';
  }
  const rate = Number(s.gateway_v3_accepted_rate);
  setText($('k-rate'), Number.isFinite(rate) ? `${(rate * 100).toFixed(rate < 1 ? 2 : 0)}%` : '–');
  $('k-rate').className = rate < 0.99 ? 'warn' : '';
  setText($('k-dack'), fmtUs(s.gateway_durable_ack_p99_us));
  setText($('k-ack'), fmtUs(s.gateway_live_ack_p99_us));
  setText($('k-fsync'), fmtUs(s.gateway_fdatasync_p99_us));
  setText($('k-seq'), fmtInt(s.gateway_journal_durable_seq));
  setText($('k-orders'), fmtInt(s.gateway_order_store_in_memory));
  setText($('k-venues'), `${fmtInt(s.gateway_venues_up)} / ${fmtInt(s.gateway_venues)}`);
  $('k-venues').className = s.gateway_venues_up < s.gateway_venues ? 'bad' : '';
  renderJournal(s);
  renderVenues(s);
}

function fact(id, text, kind = '') {
  const e = $(id);
  setText(e, text);
  e.className = kind;
}

function renderJournal(s) {
  fact('j-seq', fmtInt(s.gateway_journal_durable_seq));
  fact('j-records', `${fmtInt(s.gateway_journal_records_total)} / ${fmtInt(s.gateway_journal_commits_total)}`);
  const backlog = st.health ? st.health.journalBacklog : null;
  fact('j-backlog', `${fmtInt(backlog)} · ${fmtInt(s.gateway_wal_age_ms)} ms`, backlog > 0 ? 'warn' : '');
  fact('j-fsync', `${fmtUs(s.gateway_fdatasync_p50_us)} / ${fmtUs(s.gateway_fdatasync_p99_us)}`, s.gateway_fdatasync_p99_us > 5000 ? 'bad' : '');
  fact('j-batch', `${fmtNum(s.gateway_journal_batch_records_p50)} / ${fmtNum(s.gateway_journal_batch_records_p99)}`);
  const disk = Number(s.gateway_wal_disk_free_pct);
  fact('j-disk', Number.isFinite(disk) ? `${fmtNum(disk)} %` : '–', disk < 10 ? 'warn' : '');
  if (Number(s.gateway_outbox_running) > 0) {
    fact('j-outbox', `running · lag ${fmtInt(s.gateway_outbox_lag_records)} · errors ${fmtInt(s.gateway_outbox_errors_total)}`, s.gateway_outbox_errors_total > 0 ? 'warn' : 'ok');
  } else {
    fact('j-outbox', 'not running (no bus)');
  }
  if (Number(s.gateway_audit_chain_enabled) > 0) {
    fact('a-chain', `on · seq ${fmtInt(s.gateway_audit_chain_seq)} · anchor ${fmtInt(s.gateway_audit_anchor_seq)}`, 'ok');
  } else {
    fact('a-chain', 'off (no AUDIT_HMAC_KEYS)', 'warn');
  }
  const errors = Number(s.gateway_audit_chain_errors_total) || 0;
  fact('a-lag', `${fmtInt(s.gateway_audit_chain_lag_records)} records · ${fmtInt(errors)} errors`, errors > 0 ? 'bad' : '');
}

function renderVenues(s) {
  const venues = s.venues || [];
  const body = $('venues-body');
  body.replaceChildren(
    ...venues.map((v) =>
      el(
        'tr',
        { data: { venue: v.venue } },
        el('td', { text: v.venue, title: v.addr || '' }),
        el('td', {}, el('span', { class: `state ${v.up ? 'off' : 'on'}`, text: v.up ? 'UP' : 'DOWN' })),
        el('td', { class: 'num', text: fmtInt(v.ordersOpen) }),
        el('td', { class: 'num', text: fmtInt(v.queueDepth) }),
        el('td', { class: 'num', text: fmtInt(v.reports) }),
        el('td', { class: 'num', text: fmtInt(v.reconnects) }),
        el('td', { class: 'num', text: fmtInt(v.reportSeq) }),
      ),
    ),
  );
  $('venues-empty').hidden = venues.length > 0;
  setText($('v-sent'), fmtUs(s.gateway_order_accept_to_sent_p99_us));
  setText($('v-fill'), fmtUs(s.gateway_order_accept_to_first_fill_p99_us));
}

async function pollHealth() {
  const r = await call('/health');
  if (r.status === 0) {
    pill('health-pill', 'gateway unreachable', 'bad', r.error);
    return;
  }
  const h = r.json || {};
  st.health = h;
  const kind = h.status === 'OK' ? 'ok' : h.status === 'STOPPING' ? 'warn' : 'bad';
  pill('health-pill', `health ${h.status || r.status}`, kind, `GET /health → ${r.status}`);
  setText($('uptime'), `up ${fmtDuration(h.uptimeSec)}`);
  setText($('k-backlog'), fmtInt(h.journalBacklog));
  $('k-backlog').className = h.journalBacklog > 0 ? 'warn' : '';
}

async function pollMetrics() {
  const r = await call('/metrics', { metrics: true });
  if (!r.ok) return;
  const counts = byLabel(parseProm(r.text), 'gateway_v3_reject_total', 'reason');
  const t = Date.now();
  st.rejects.push({ t, counts });
  while (st.rejects.length > 2 && st.rejects[0].t < t - 60000) st.rejects.shift();
  const base = st.rejects[0].counts;
  const rows = Object.entries(counts)
    .filter(([, n]) => n > 0)
    .sort((a, b) => b[1] - a[1]);
  const max = rows.length ? rows[0][1] : 1;
  $('rejects').replaceChildren(
    ...rows.map(([reason, n]) => {
      const fill = el('span', { class: 'fill' });
      fill.style.width = `${Math.max(2, (n / max) * 100)}%`;
      const recent = n - (base[reason] || 0);
      return el(
        'div',
        { class: 'bar', data: { reason } },
        el('span', { class: 'label', text: reason, title: reason }, fill),
        el('span', { class: 'n', text: fmtInt(n) }),
        el('span', { class: 'r', text: recent > 0 ? `+${fmtInt(recent)}` : '' }),
      );
    }),
  );
  $('rejects-empty').hidden = rows.length > 0;
}

// ---------------------------------------------------------------------------------------------
// audit chain

async function pollAnchor() {
  const r = await call('/audit/anchor');
  if (r.ok && r.json) {
    const a = r.json;
    st.anchorSeq = Number(a.seq) || 0;
    fact('a-anchor', `seq ${fmtInt(a.seq)} · key ${a.keyId} · ${String(a.hash || '').slice(0, 12)}… · ${fmtTime(a.at)}`);
    $('a-anchor').title = String(a.hash || '');
  } else {
    fact('a-anchor', r.error === 'anchor not available' ? 'not available yet' : r.error || '–', 'muted');
  }
}

async function verifyAudit() {
  const btn = $('audit-verify');
  const out = $('audit-result');
  btn.disabled = true;
  setText(out, 'verifying…');
  out.className = 'muted';
  const from = Math.max(0, st.anchorSeq - 9999);
  const r = await call(`/audit/verify?fromSeq=${from}&limit=10000`, { timeoutMs: 30000 });
  btn.disabled = false;
  if (!r.ok || !r.json) {
    setText(out, `failed: ${r.error}`);
    out.className = 'bad';
    return;
  }
  const v = r.json;
  if (v.ok) {
    setText(out, `✓ ok · ${fmtInt(v.checked)} records checked through seq ${fmtInt(v.lastSeq)}`);
    out.className = 'ok';
  } else {
    setText(out, `✗ ${v.error}${v.badSeq !== undefined ? ` (seq ${v.badSeq})` : ''}`);
    out.className = 'bad';
  }
  out.dataset.ok = String(Boolean(v.ok));
}

// ---------------------------------------------------------------------------------------------
// kill switches

async function pollKill() {
  const r = await call('/v3/admin/kill-switches');
  if (!r.ok || !r.json) {
    if (r.status === 403) {
      $('kill-note').hidden = false;
      setText($('kill-note'), 'The gateway refused: the token lacks scope "ops".');
    }
    return;
  }
  st.kill = r.json;
  setText($('kill-updated'), fmtTime(Date.now()));
  renderKill();
}

function killRow(scope, id, label, on, detail = '') {
  return el(
    'div',
    { class: 'kill-row', data: { scope, id, on: String(on) } },
    el('span', { class: 'kname', title: label }, document.createTextNode(label), detail ? el('span', { class: 'detail', text: detail }) : null),
    el('span', { class: `state ${on ? 'on' : 'off'}`, text: on ? 'KILLED' : 'live' }),
    el('button', {
      class: `kill-toggle ${on ? '' : 'danger'}`,
      text: on ? 'Release' : 'Kill',
      attrs: { type: 'button' },
      data: { killScope: scope, killId: id, killOn: String(!on) },
    }),
  );
}

function renderKill() {
  const k = st.kill;
  if (!k) return;
  const g = $('kill-global-state');
  setText(g, k.global ? 'KILLED' : 'live');
  g.className = `state ${k.global ? 'on' : 'off'}`;
  const gb = $('kill-global-btn');
  setText(gb, k.global ? 'Release' : 'Kill all');
  gb.className = `kill-toggle ${k.global ? '' : 'danger'}`;
  gb.dataset.killOn = String(!k.global);
  $('kill-global-row').dataset.on = String(Boolean(k.global));

  $('kill-shards').replaceChildren(...(k.shards || []).map((s) => killRow('shard', String(s.shard), `shard ${s.shard}`, s.killed, `${fmtNum(s.utilizationPct)} % full`)));
  const killed = new Set(k.accounts || []);
  const all = [...new Set([...(k.accounts || []), ...st.accounts])].sort();
  $('kill-accounts').replaceChildren(...all.map((a) => killRow('account', a, a, killed.has(a))));
  if (all.length === 0) $('kill-accounts').append(el('p', { class: 'empty', text: 'none yet' }));
  $('kill-sessions').replaceChildren(...(k.sessions || []).map((s) => killRow('session', s, s, true)));
  if (!(k.sessions || []).length) $('kill-sessions').append(el('p', { class: 'empty', text: 'none killed' }));
}

const CONSEQUENCE = {
  global: 'Every new order on every account is refused 503 KILLED, and /health answers 503.',
  shard: 'New v3 orders routed to this ingress shard are refused 503 KILLED.',
  session: 'New v3 orders of this session are refused 503 KILLED.',
  account: 'New orders of this account are refused 503 KILLED (V3_ACCOUNT_KILLED).',
};

async function requestKill(scope, id, on) {
  const what = scope === 'global' ? 'the GLOBAL kill switch' : `the ${scope} kill switch for "${id}"`;
  const { ok, note } = await confirmDialog(
    on ? 'Turn kill switch ON' : 'Turn kill switch OFF',
    `${on ? 'Turn ON' : 'Turn OFF'} ${what}? ${on ? CONSEQUENCE[scope] : 'Orders are accepted again.'} The change is journaled.`,
  );
  if (!ok) return toast('Kill switch unchanged.');
  const r = await call('/v3/admin/kill-switches', {
    method: 'POST',
    body: { scope, id: scope === 'global' ? '' : id, on, note: note || 'operations console' },
  });
  if (r.ok) toast(`${scope}${id ? ` ${id}` : ''}: kill switch ${on ? 'ON' : 'OFF'} (journaled)`, 'ok');
  else toast(`kill switch change refused: ${r.status} ${r.error}`, 'bad');
  await once('kill', pollKill);
}

function onKillClick(ev) {
  const b = ev.target.closest('button.kill-toggle');
  if (!b) return;
  requestKill(b.dataset.killScope, b.dataset.killId || '', b.dataset.killOn === 'true');
}

function onKillForm(on) {
  const scope = $('kill-scope').value;
  const id = $('kill-id').value.trim();
  if (!id) return toast('Enter the id of the account, session or shard.', 'bad');
  requestKill(scope, id, on);
}

// ---------------------------------------------------------------------------------------------
// start

function init() {
  latencyChart = new LineChart($('chart-latency'), { series: latencySeries, log: true, format: fmtUs });
  throughputChart = new LineChart($('chart-throughput'), { series: throughputSeries, format: fmtNum });
  latencyLegend = legend('legend-latency', latencySeries);
  throughputLegend = legend('legend-throughput', throughputSeries);

  $('login-form').addEventListener('submit', login);
  $('logout').addEventListener('click', logout);
  $('blotter-filter').addEventListener('input', refilter);
  $('blotter-status').addEventListener('change', refilter);
  $('blotter-clear').addEventListener('click', () => {
    st.orders.clear();
    $('blotter-body').replaceChildren();
    $('fills-body').replaceChildren();
    st.fills = 0;
    updateCounts();
  });
  $('audit-verify').addEventListener('click', verifyAudit);
  $('kill-panel').addEventListener('click', onKillClick);
  $('kill-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    onKillForm(true);
  });
  $('kill-off').addEventListener('click', () => onKillForm(false));
  $('confirm-cancel').addEventListener('click', () => $('confirm').close('cancel'));
  $('confirm-ok').value = 'confirm';

  updateCounts();
  if (creds.token) startSession();
  else $('token').focus();
}

init();
