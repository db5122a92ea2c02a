// The operator's credentials (sessionStorage: gone when the tab closes) and the HTTP calls of
// the console. Every data call carries the bearer token; /metrics and /stats also carry the
// metrics token as X-Metrics-Token when one is given (GATEWAY_METRICS_TOKEN).

const TOKEN_KEY = 'switchyard.console.token';
const METRICS_KEY = 'switchyard.console.metricsToken';

export const creds = {
  get token() {
    return sessionStorage.getItem(TOKEN_KEY) || '';
  },
  get metricsToken() {
    return sessionStorage.getItem(METRICS_KEY) || '';
  },
  save(token, metricsToken) {
    sessionStorage.setItem(TOKEN_KEY, token);
    if (metricsToken) sessionStorage.setItem(METRICS_KEY, metricsToken);
    else sessionStorage.removeItem(METRICS_KEY);
  },
  clear() {
    sessionStorage.removeItem(TOKEN_KEY);
    sessionStorage.removeItem(METRICS_KEY);
  },
};

/** The claims of a JWT (not verified: the gateway does that; this is for display only). */
export function claims(token) {
  try {
    const part = token.split('.')[1];
    const b64 = part.replace(/-/g, '+').replace(/_/g, '/');
    const json = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
    const bytes = Uint8Array.from(json, (c) => c.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return null;
  }
}

/** Whether the claims' `scope` (space or comma separated, or a list) contains `want`. */
export function hasScope(c, want) {
  if (!c || c.scope === undefined || c.scope === null) return false;
  const list = Array.isArray(c.scope) ? c.scope : String(c.scope).split(/[\s,]+/);
  return list.includes(want);
}

/** Headers of a data call. */
export function authHeaders(metrics = false) {
  const h = {};
  if (creds.token) h.Authorization = `Bearer ${creds.token}`;
  if (metrics && creds.metricsToken) h['X-Metrics-Token'] = creds.metricsToken;
  return h;
}

/**
 * One call: `{status, ok, json, text, error}`; `error` is the gateway's reason
 * (`error` / `reason` field) or a network failure. Never throws.
 */
export async function call(path, { method = 'GET', body, metrics = false, timeoutMs = 8000 } = {}) {
  const headers = authHeaders(metrics);
  const init = { method, headers, cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(), timeoutMs);
  init.signal = ctrl.signal;
  try {
    const res = await fetch(path, init);
    const text = await res.text();
    let json = null;
    if ((res.headers.get('content-type') || '').includes('json')) {
      try {
        json = JSON.parse(text);
      } catch {
        json = null;
      }
    }
    const error = res.ok ? null : (json && (json.error || json.reason)) || `HTTP ${res.status}`;
    return { status: res.status, ok: res.ok, json, text, error };
  } catch (e) {
    return { status: 0, ok: false, json: null, text: '', error: e.name === 'AbortError' ? 'timeout' : String(e.message || e) };
  } finally {
    clearTimeout(timer);
  }
}
