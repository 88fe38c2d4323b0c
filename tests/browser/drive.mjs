// Drives headless Debian chromium with playwright-core through one scenario of test_browser.py,
// against the real servers that script started. Usage: node drive.mjs SCENARIO CONFIG_JSON.
// Prints "EVENT {json}" lines for the Python side to check, and exits non-zero on a failure.
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '../../web/package.json'));
const { chromium } = require('playwright-core');

const [scenario, configText] = process.argv.slice(2);
const cfg = JSON.parse(configText);
const TIMEOUT = 30000;

function check(cond, message) {
  if (!cond) throw new Error(message);
}
function event(name, data) {
  console.log('EVENT ' + JSON.stringify({ name, ...data }));
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function openDevice(context, query) {
  const page = await context.newPage();
  page.on('console', (m) => m.type() === 'error' && console.error(`page console: ${m.text()}`));
  page.on('pageerror', (e) => console.error(`page error: ${e.message}`));
  await page.goto(`${cfg.base}/?${new URLSearchParams(query)}`);
  await page.waitForFunction(() => window.hbDevice && window.hbDevice.id, null, { timeout: TIMEOUT });
  return page;
}
const deviceOf = (page) => page.evaluate(() => {
  const d = window.hbDevice;
  return { id: d.id, state: d.state, renewals: d.renewals, connects: d.connects, seq: d.seq,
           watching: d.watching, stopReason: d.stopReason, pubackError: d.lastPubackError };
});
async function waitState(page, state) {
  await page.waitForFunction((s) => window.hbDevice.state === s, state, { timeout: TIMEOUT });
  return deviceOf(page);
}
const text = (page, sel) => page.locator(sel).innerText();
async function screenshot(page, name) {
  if (cfg.screenshots) await page.screenshot({ path: path.join(cfg.screenshots, name), fullPage: true });
}
async function api(method, p) {
  const r = await fetch(cfg.base + p, { method, headers: { Authorization: `Bearer ${cfg.apiKey}` } });
  return { status: r.status, body: await r.json() };
}

const scenarios = {
  // Limit 2: two pages play, the third is refused with both listed; stopping one from the third
  // page lets it play, and the stopped page says so.
  async limit_two_third_page_refused_then_stops_one(browser) {
    const context = await browser.newContext({ viewport: { width: 640, height: 480 } });
    const q = { account: cfg.account, media: 'film-1' };
    const one = await openDevice(context, q);
    const a = await waitState(one, 'playing');
    await screenshot(one, 'device-playing.png');
    const two = await openDevice(context, q);
    const b = await waitState(two, 'playing');
    const three = await openDevice(context, q);
    const c = await waitState(three, 'refused');
    check(new Set([a.id, b.id, c.id]).size === 3, `three tabs, three ids: ${a.id} ${b.id} ${c.id}`);
    const listed = await three.locator('#others-list li').evaluateAll((lis) => lis.map((li) => li.dataset.device));
    check(JSON.stringify(listed.sort()) === JSON.stringify([a.id, b.id].sort()),
      `the refusal lists the two playing devices: ${listed}`);
    const message = await text(three, '#message');
    check(message.includes('Too many screens on this account (limit 2)'), `refusal text: ${message}`);
    await screenshot(three, 'device-refused.png');
    await three.locator(`#others-list li[data-device="${a.id}"] button`).click();
    await waitState(three, 'playing');
    const stopped = await waitState(one, 'stopped');
    check(stopped.stopReason === 'released', `the stopped page's reason: ${stopped.stopReason}`);
    const shown = await text(one, '#message');
    check(shown === 'Playback stopped from another screen', `stopped page text: ${shown}`);
    await screenshot(one, 'device-stopped.png');
    event('ids', { stopped: a.id, playing: [b.id, c.id] });
  },

  // A short token lifetime: the page renews before expiry and reconnects, heartbeating on.
  async token_renewal_keeps_counting(browser) {
    const context = await browser.newContext();
    const page = await openDevice(context, { account: cfg.account, media: 'film-2' });
    const d = await waitState(page, 'playing');
    event('playing', { id: d.id, t: Date.now() });
    await page.waitForFunction((n) => window.hbDevice.renewals >= n, cfg.renewals,
      { timeout: cfg.renewals * cfg.ttl * 1000 + TIMEOUT });
    await sleep(cfg.after_ms);
    const end = await deviceOf(page);
    check(end.state === 'playing', `still playing after renewals: ${end.state}`);
    check(end.pubackError === null, `a heartbeat was refused: reason ${end.pubackError}`);
    event('renewed', { id: end.id, renewals: end.renewals, connects: end.connects, seq: end.seq, t: Date.now() });
  },

  // Reload keeps the id; a second tab gets another; a new tab after both closed takes one back.
  async reload_keeps_id_second_tab_gets_another(browser) {
    const context = await browser.newContext();
    const q = { account: cfg.account, media: 'film-3', autoplay: '0' };
    const first = await openDevice(context, q);
    const id = (await deviceOf(first)).id;
    check(/^web-[0-9a-f]{10}$/.test(id), `device id shape: ${id}`);
    await first.reload();
    await first.waitForFunction(() => window.hbDevice && window.hbDevice.id);
    const reloaded = (await deviceOf(first)).id;
    check(reloaded === id, `reload kept the id: ${id} -> ${reloaded}`);
    const second = await openDevice(context, q);
    const other = (await deviceOf(second)).id;
    check(other !== id, `a second tab has its own id: ${other}`);
    await first.close();
    await second.close();
    const later = await openDevice(context, q);
    const back = (await deviceOf(later)).id;
    check(back === id || back === other, `a new tab reuses an id of this profile: ${back}`);
    event('ids', { first: id, second: other, later: back });
  },

  // Stops from the control topic: DELETE through the API, then evict_oldest with the list.
  async control_topic_stops_are_shown(browser) {
    const context = await browser.newContext({ viewport: { width: 640, height: 480 } });
    const q = { account: cfg.account, media: 'film-4' };
    const one = await openDevice(context, q);
    const a = await waitState(one, 'playing');
    const r = await api('DELETE', `/v1/plays/${cfg.account}/${a.id}`);
    check(r.status === 200 && r.body.released === true, `DELETE answered ${r.status} ${JSON.stringify(r.body)}`);
    const s = await waitState(one, 'stopped');
    check(s.stopReason === 'released', `reason after DELETE: ${s.stopReason}`);
    // evict_oldest with limit 1 (set by the Python side): a second page evicts the first.
    await one.locator('#play').click();
    await waitState(one, 'playing');
    const two = await openDevice(context, q);
    const b = await waitState(two, 'playing');
    const ev = await waitState(one, 'stopped');
    check(ev.stopReason === 'evicted', `reason after eviction: ${ev.stopReason}`);
    const shown = await text(one, '#message');
    check(shown === 'Playback stopped: too many screens on this account', `evicted text: ${shown}`);
    await one.locator(`#others-list li[data-device="${b.id}"]`).waitFor({ timeout: TIMEOUT });
    await screenshot(one, 'device-evicted.png');
    event('ids', { evicted: a.id, playing: b.id });
  },

  // Closing a tab: pagehide sends the stop heartbeat (and, unless backup_delete=0, the DELETE).
  async close_tab(browser) {
    const context = await browser.newContext();
    const q = { account: cfg.account, media: 'film-5', ...(cfg.backup_delete ? {} : { backup_delete: '0' }) };
    const page = await openDevice(context, q);
    const d = await waitState(page, 'playing');
    event('playing', { id: d.id });
    await page.close({ runBeforeUnload: true });
    event('closed', { id: d.id, t: Date.now() });
  },

  // The live count of what a page plays, from the retained live/media/<media> topic.
  async live_count(browser) {
    const context = await browser.newContext();
    const pages = [];
    for (let i = 0; i < cfg.pages; i++) {
      pages.push(await openDevice(context, { account: cfg.account, media: cfg.media }));
      await waitState(pages[i], 'playing');
    }
    event('playing', { ids: await Promise.all(pages.map(async (p) => (await deviceOf(p)).id)) });
    for (const want of cfg.expect) {
      for (const p of pages) {
        await p.waitForFunction((n) => window.hbDevice.watching === n, want, { timeout: TIMEOUT });
        const t = await text(p, '#watching');
        check(t === `${want} watching now`, `live count text: ${t}`);
      }
      event('shown', { watching: want });
      // The Python side publishes the next value when it sees this line.
      if (want !== cfg.expect[cfg.expect.length - 1]) await new Promise((r) => process.stdin.once('data', r));
    }
  },
  // The dashboard shows exactly the population the Python side publishes (cfg.expect).
  async dashboard_shows_the_population(browser) {
    const context = await browser.newContext({ viewport: { width: 900, height: 900 } });
    const page = await context.newPage();
    page.on('pageerror', (e) => console.error(`page error: ${e.message}`));
    await page.goto(`${cfg.base}/dashboard`);
    const shown = () => page.evaluate(() => {
      const metric = (n) => document.querySelector(`[data-metric="${n}"]`).textContent;
      const dist = {};
      for (const ul of document.querySelectorAll('[data-breakdown]')) {
        dist[ul.dataset.breakdown] = Object.fromEntries(
          [...ul.querySelectorAll('li')].map((li) => [li.dataset.name, Number(li.dataset.count)]));
      }
      const sum = (n) => metric(n).split('/').reduce((a, b) => a + Number(b), 0);
      return { total: Number(metric('viewers_total')), active: Number(metric('viewers_active')),
               playTime: metric('play_time_avg'), bitrate: [metric('bitrate_min'),
                 metric('bitrate_avg'), metric('bitrate_max')], dist,
               admissions: sum('admissions_per_min'), refusals: sum('refusals_per_min'),
               atLimit: sum('accounts_at_limit') };
    });
    // Key order differs between Python and the page: compare with sorted keys.
    const canon = (v) => JSON.stringify(v, (k, x) => (x && typeof x === 'object' && !Array.isArray(x)
      ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => (a < b ? -1 : a > b))) : x));
    const want = canon(cfg.expect);
    let got = null;
    const deadline = Date.now() + TIMEOUT;
    while (Date.now() < deadline) {
      got = await shown();
      if (canon(got) === want) break;
      await sleep(250);
    }
    check(canon(got) === want, `dashboard shows ${canon(got)}, want ${want}`);
    await screenshot(page, 'dashboard.png');
    event('shown', got);
  },
};

const browser = await chromium.launch({
  executablePath: cfg.chromium || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  check(scenarios[scenario], `unknown scenario ${scenario}`);
  await scenarios[scenario](browser);
  console.log('OK');
} catch (e) {
  console.error(`FAIL ${scenario}: ${e.message}`);
  process.exitCode = 1;
} finally {
  await browser.close();
  process.stdin.destroy(); // a scenario may have read it: let node exit
}
