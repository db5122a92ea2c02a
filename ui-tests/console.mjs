// Browser test of the operations console (/ui), run by crates/switchyard/tests/ui.rs against a
// real gateway. playwright-core drives Debian's chromium (no browser download).
//
// Environment (set by the Rust test):
//   UI_BASE_URL            http://127.0.0.1:<port>
//   UI_OPS_TOKEN           JWT with scope ops (logs in to the console)
//   UI_TRADER_TOKEN/_ACCOUNT, UI_TRADER2_TOKEN/_ACCOUNT   two accounts that place orders
//   UI_SCREENSHOT          where to save the screenshot (PNG)
//   SWITCHYARD_TEST_CHROMIUM          the chromium binary (default /usr/bin/chromium)
//   SWITCHYARD_TEST_UI_NODE_MODULES   ui-tests/node_modules (default: next to this file)
//
// Exit 0 when every step passed; otherwise 1 with the step that failed and why.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const started = Date.now();

function need(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set (this script is run by crates/switchyard/tests/ui.rs)`);
  return v;
}

const BASE = need('UI_BASE_URL');
const OPS = need('UI_OPS_TOKEN');
const TRADER = need('UI_TRADER_TOKEN');
const TRADER_ACCOUNT = need('UI_TRADER_ACCOUNT');
const TRADER2 = need('UI_TRADER2_TOKEN');
const TRADER2_ACCOUNT = need('UI_TRADER2_ACCOUNT');
const SCREENSHOT = need('UI_SCREENSHOT');
const CHROMIUM = process.env.SWITCHYARD_TEST_CHROMIUM || '/usr/bin/chromium';
const NODE_MODULES = process.env.SWITCHYARD_TEST_UI_NODE_MODULES || path.join(here, 'node_modules');

const log = (msg) => console.log(`[ui ${((Date.now() - started) / 1000).toFixed(1).padStart(5)}s] ${msg}`);

class StepFailed extends Error {}

/** Runs one named step; a failure names the step. */
async function step(name, fn) {
  const t = Date.now();
  try {
    const r = await fn();
    log(`ok  ${name} (${Date.now() - t} ms)`);
    return r;
  } catch (e) {
    throw new StepFailed(`step "${name}" failed: ${e && e.message ? e.message : e}`);
  }
}

function check(cond, msg) {
  if (!cond) throw new Error(msg);
}

// --- the gateway's HTTP API, from node --------------------------------------------------------

async function api(method, p, token, body, extra = {}) {
  const headers = { ...extra };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(BASE + p, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: res.status, json, text, headers: res.headers };
}

let keySeq = 0;
const runId = Date.now().toString(36);

/** POST /orders with an Idempotency-Key; returns {status, json}. */
function order(token, body) {
  keySeq += 1;
  return api('POST', '/orders', token, body, { 'Idempotency-Key': `ui-${runId}-${keySeq}` });
}

async function placeOrFail(token, body) {
  const r = await order(token, body);
  check(r.status === 202 && r.json && r.json.orderId, `POST /orders ${JSON.stringify(body)} → ${r.status} ${r.text}`);
  return r.json.orderId;
}

async function killSwitches() {
  const r = await api('GET', '/v3/admin/kill-switches', OPS);
  check(r.status === 200, `GET /v3/admin/kill-switches → ${r.status} ${r.text}`);
  return r.json;
}

async function poll(what, ms, probe) {
  const deadline = Date.now() + ms;
  let last;
  while (Date.now() < deadline) {
    last = await probe();
    if (last.ok) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}; last seen: ${JSON.stringify(last && last.seen)}`);
}

/** Background order flow so that the charts and panels have something to show. */
function startTraffic() {
  let running = true;
  let n = 0;
  const loop = (async () => {
    while (running) {
      n += 1;
      const who = n % 2 ? TRADER : TRADER2;
      const body =
        n % 9 === 0
          ? { symbol: 'NOPE', side: 'BUY', type: 'LIMIT', qty: 1, price: 100, timeInForce: 'GTC' } // INVALID_SYMBOL
          : n % 3 === 0
            ? { symbol: n % 2 ? 'ETH' : 'AAPL', side: 'SELL', type: 'LIMIT', qty: 1 + (n % 5), price: 99999000 + n, timeInForce: 'GTC' }
            : { symbol: n % 4 ? 'BTC' : 'ETH', side: n % 4 < 2 ? 'BUY' : 'SELL', type: 'MARKET', qty: 1 + (n % 3), timeInForce: 'IOC' };
      await order(who, body).catch(() => {});
      if (n % 2 === 0) {
        // the v3 hot path too (its acknowledgement latency has a line in the chart)
        await api('POST', '/v3/orders', who, { symbol: 'AAPL', side: 'BUY', type: 'LIMIT', qty: 1, price: 15000 }).catch(() => {});
      }
      await new Promise((r) => setTimeout(r, 150));
    }
  })();
  return async () => {
    running = false;
    await loop;
    return n;
  };
}

// --- the browser -------------------------------------------------------------------------------

async function main() {
  check(fs.existsSync(CHROMIUM), `no chromium at ${CHROMIUM}: run scripts/services.sh install`);
  const pwEntry = path.join(NODE_MODULES, 'playwright-core', 'index.mjs');
  check(fs.existsSync(pwEntry), `no playwright-core at ${pwEntry}: run scripts/services.sh install (npm ci --prefix ui-tests)`);
  const { chromium } = await import(pathToFileURL(pwEntry).href);

  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'switchyard-ui-profile-'));
  let context;
  const problems = [];
  let stopTraffic = null;
  let page;
  try {
    context = await step('launch chromium', () =>
      chromium.launchPersistentContext(profile, {
        executablePath: CHROMIUM,
        headless: true,
        args: [
          '--headless',
          '--no-sandbox',
          '--disable-gpu',
          '--disable-quic',
          '--no-first-run',
          '--disable-background-networking',
          '--disable-component-update',
          '--disable-sync',
        ],
        viewport: { width: 1600, height: 1000 },
        deviceScaleFactor: 1,
        timeout: 60000,
      }),
    );
    page = context.pages()[0] || (await context.newPage());
    page.setDefaultTimeout(15000);
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() !== 'error') return;
      const where = (m.location() && m.location().url) || '';
      // An API answer of 4xx/5xx is logged by the browser as a failed resource; the console
      // handles those (e.g. 404 "anchor not available" before the first anchor). Failures of
      // the console's own files, script errors and CSP violations are problems.
      if (/^Failed to load resource/.test(m.text()) && where && !new URL(where).pathname.startsWith('/ui')) return;
      problems.push(`console error: ${m.text()}${where ? ` (${where})` : ''}`);
    });
    page.on('response', (r) => {
      if (new URL(r.url()).pathname.startsWith('/ui') && r.status() !== 200) problems.push(`${r.url()} → ${r.status()}`);
    });

    await step('open /ui (no token needed; CSP, no-cache, HTML)', async () => {
      const res = await page.goto(`${BASE}/ui`, { waitUntil: 'load' });
      check(res && res.status() === 200, `GET /ui → ${res && res.status()}`);
      const h = res.headers();
      check((h['content-type'] || '').startsWith('text/html'), `content-type ${h['content-type']}`);
      check(h['cache-control'] === 'no-cache', `cache-control ${h['cache-control']}`);
      check((h['content-security-policy'] || '').includes("default-src 'self'"), `CSP ${h['content-security-policy']}`);
      await page.waitForSelector('#login-form:not([hidden]) #token');
      check(await page.isHidden('#identity'), 'identity shown before login');
    });

    await step('log in with the ops token (sessionStorage, stream live over fetch)', async () => {
      await page.fill('#token', OPS);
      await page.click('#login');
      await page.waitForSelector('#identity:not([hidden])');
      const stored = await page.evaluate(() => sessionStorage.getItem('switchyard.console.token'));
      check(stored === OPS, 'the token is not in sessionStorage');
      await page.waitForFunction(() => document.querySelector('#stream-pill').textContent === 'stream live', null, { timeout: 15000 });
      const scope = await page.textContent('#blotter-scope');
      check(scope === 'all accounts', `blotter scope "${scope}" (ops should stream ?scope=all)`);
    });

    stopTraffic = startTraffic();

    const ids = await step('place orders through the API after the page loaded (two accounts)', async () => {
      const filled = await placeOrFail(TRADER, { symbol: 'BTC', side: 'BUY', type: 'MARKET', qty: 2, timeInForce: 'IOC', clientOrderId: `ui-fill-${runId}` });
      const resting = await placeOrFail(TRADER2, { symbol: 'ETH', side: 'SELL', type: 'LIMIT', qty: 3, price: 99999999, timeInForce: 'GTC', clientOrderId: `ui-rest-${runId}` });
      return { filled, resting };
    });

    await step(`order ${ids.filled} (${TRADER_ACCOUNT}) and ${ids.resting} (${TRADER2_ACCOUNT}) appear in the blotter`, async () => {
      for (const [id, account] of [
        [ids.filled, TRADER_ACCOUNT],
        [ids.resting, TRADER2_ACCOUNT],
      ]) {
        const row = page.locator(`#blotter-body tr[data-order-id="${id}"]`);
        await row.waitFor({ state: 'visible', timeout: 15000 });
        const text = await row.textContent();
        check(text.includes(account), `row of ${id} does not name account ${account}: ${text}`);
      }
      const cid = await page.textContent(`#blotter-body tr[data-order-id="${ids.filled}"] td:nth-child(2)`);
      check(cid === `ui-fill-${runId}`, `client order id cell "${cid}"`);
    });

    await step('the marketable order fills: status FILLED in the blotter, its fills in the fills table', async () => {
      await page.waitForFunction(
        (id) => {
          const r = document.querySelector(`#blotter-body tr[data-order-id="${id}"]`);
          return r && r.querySelector('td.st').textContent === 'FILLED';
        },
        ids.filled,
        { timeout: 20000 },
      );
      await page.locator(`#fills-body tr.fill[data-order-id="${ids.filled}"]`).first().waitFor({ timeout: 10000 });
      const venue = await page.textContent(`#blotter-body tr[data-order-id="${ids.filled}"] td:nth-child(11)`);
      check(/^sim[AB]$/.test(venue), `venue cell "${venue}"`);
    });

    await step('charts drew samples, legends show values', async () => {
      await page.waitForFunction(
        () => Number(document.querySelector('#chart-latency').dataset.points) >= 4 && Number(document.querySelector('#chart-throughput').dataset.points) >= 3,
        null,
        { timeout: 20000 },
      );
      const legend = await page.textContent('#legend-latency');
      check(/durable ack p99\s*[\d.]+\s*(µs|ms)/.test(legend), `latency legend: ${legend}`);
      await page.waitForFunction(() => /accepted\s*[1-9]/.test(document.querySelector('#legend-throughput').textContent), null, { timeout: 10000 });
      const drawn = await page.evaluate(() => {
        const c = document.querySelector('#chart-throughput');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let lit = 0;
        for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 0) lit += 1;
        return lit;
      });
      check(drawn > 500, `the throughput canvas is almost empty (${drawn} pixels)`);
    });

    await step('venue sessions: simA and simB up', async () => {
      for (const v of ['simA', 'simB']) {
        await page.waitForFunction((name) => {
          const r = document.querySelector(`#venues-body tr[data-venue="${name}"]`);
          return r && r.textContent.includes('UP');
        }, v);
      }
      const up = await page.textContent('#k-venues');
      check(up.replace(/\s/g, '') === '2/2', `venues up KPI "${up}"`);
    });

    await step('journal and audit chain panel, audit verify button', async () => {
      await page.waitForFunction(() => Number(document.querySelector('#j-seq').textContent.replace(/,/g, '')) > 0);
      const chain = await page.textContent('#a-chain');
      check(chain.startsWith('on'), `audit chain "${chain}"`);
      await page.waitForFunction(() => document.querySelector('#a-anchor').textContent.startsWith('seq'), null, { timeout: 15000 });
      await page.click('#audit-verify');
      await page.waitForSelector('#audit-result[data-ok]', { timeout: 20000 });
      const res = await page.textContent('#audit-result');
      check((await page.getAttribute('#audit-result', 'data-ok')) === 'true', `audit verify: ${res}`);
      const health = await page.textContent('#health-pill');
      check(health === 'health OK', `health pill "${health}"`);
    });

    await step('rejects by reason: INVALID_SYMBOL counted', async () => {
      await page.waitForSelector('#rejects .bar[data-reason="INVALID_SYMBOL"]', { timeout: 15000 });
    });

    const killBtn = `#kill-accounts .kill-row[data-id="${TRADER_ACCOUNT}"] button.kill-toggle`;
    await step(`kill switch: cancelling the confirmation changes nothing (${TRADER_ACCOUNT})`, async () => {
      await page.waitForSelector(killBtn);
      check((await page.textContent(killBtn)) === 'Kill', 'the account is not live at start');
      await page.click(killBtn);
      await page.waitForSelector('#confirm[open]');
      const text = await page.textContent('#confirm-text');
      check(text.includes(TRADER_ACCOUNT) && text.includes('Turn ON'), `confirmation text: ${text}`);
      await page.click('#confirm-cancel');
      await page.waitForSelector('#confirm:not([open])', { state: 'attached' });
      await new Promise((r) => setTimeout(r, 300));
      const k = await killSwitches();
      check(!k.accounts.includes(TRADER_ACCOUNT), `killed without confirmation: ${JSON.stringify(k)}`);
    });

    await step(`kill switch ON for account ${TRADER_ACCOUNT} through the UI, confirmed, seen by the API`, async () => {
      await page.click(killBtn);
      await page.waitForSelector('#confirm[open]');
      await page.fill('#confirm-note', 'ui test');
      await page.click('#confirm-ok');
      await poll('the API to report the account killed', 10000, async () => {
        const k = await killSwitches();
        return { ok: k.accounts.includes(TRADER_ACCOUNT), seen: k };
      });
      await page.waitForSelector(`#kill-accounts .kill-row[data-id="${TRADER_ACCOUNT}"][data-on="true"]`);
      const r = await order(TRADER, { symbol: 'BTC', side: 'BUY', type: 'MARKET', qty: 1, timeInForce: 'IOC' });
      check(r.status === 503 && r.json && r.json.reason === 'V3_ACCOUNT_KILLED', `order of the killed account → ${r.status} ${r.text}`);
    });

    await step(`kill switch OFF again through the UI, confirmed, seen by the API`, async () => {
      await page.waitForFunction((sel) => document.querySelector(sel)?.textContent === 'Release', killBtn);
      await page.click(killBtn);
      await page.waitForSelector('#confirm[open]');
      check((await page.textContent('#confirm-text')).includes('Turn OFF'), 'confirmation does not say Turn OFF');
      await page.click('#confirm-ok');
      await poll('the API to report the account live', 10000, async () => {
        const k = await killSwitches();
        return { ok: !k.accounts.includes(TRADER_ACCOUNT), seen: k };
      });
      await page.waitForSelector(`#kill-accounts .kill-row[data-id="${TRADER_ACCOUNT}"][data-on="false"]`);
      await placeOrFail(TRADER, { symbol: 'BTC', side: 'BUY', type: 'MARKET', qty: 1, timeInForce: 'IOC' });
    });

    await step('screenshot', async () => {
      // A few more seconds of flow so the charts show a shape; the picture is taken while
      // orders still flow.
      await new Promise((r) => setTimeout(r, 5000));
      await page.evaluate(() => document.querySelectorAll('.toast').forEach((t) => t.remove()));
      await page.screenshot({ path: SCREENSHOT, fullPage: true });
      const n = await stopTraffic();
      stopTraffic = null;
      log(`background flow: ${n} durable orders (and v3 orders beside them)`);
      check(fs.statSync(SCREENSHOT).size > 10000, 'screenshot is suspiciously small');
      log(`screenshot: ${SCREENSHOT}`);
    });

    await step('log out: token gone from sessionStorage, stream stopped, login form back', async () => {
      await page.click('#logout');
      await page.waitForSelector('#login-form:not([hidden])');
      const stored = await page.evaluate(() => sessionStorage.getItem('switchyard.console.token'));
      check(stored === null, 'token still in sessionStorage');
      const pillText = await page.textContent('#stream-pill');
      check(pillText === 'stream off', `stream pill "${pillText}"`);
      check((await page.locator('#blotter-body tr').count()) === 0, 'blotter not cleared');
    });

    await step('no page errors, console errors or CSP violations', async () => {
      check(problems.length === 0, problems.join('\n'));
    });
  } catch (e) {
    if (page) {
      const shot = SCREENSHOT.replace(/\.png$/, '') + '.failed.png';
      await page.screenshot({ path: shot, fullPage: true }).catch(() => {});
      console.error(`[ui] screenshot of the failure: ${shot}`);
    }
    if (problems.length) console.error(`[ui] page problems so far:\n  ${problems.join('\n  ')}`);
    throw e;
  } finally {
    if (stopTraffic) await stopTraffic().catch(() => {});
    if (context) await context.close().catch(() => {});
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

main().then(
  () => {
    log('PASSED');
    process.exit(0);
  },
  (e) => {
    console.error(`[ui] FAILED: ${e instanceof StepFailed ? e.message : e && e.stack ? e.stack : e}`);
    process.exit(1);
  },
);
