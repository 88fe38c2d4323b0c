// The dashboard: polls GET /dashboard/data once a second and fills the page's [data-metric] and
// [data-breakdown] slots. Every number comes from aggregates kept as heartbeats arrive (README
// "Dashboard"), so a poll costs the same with ten devices or 200,000.
'use strict';

const POLL_MS = 1000;

function text(name, value) {
  for (const el of document.querySelectorAll(`[data-metric="${name}"]`)) el.textContent = value;
}

function fixed(v, digits, unit) {
  return v === null || v === undefined ? '–' : `${Number(v).toFixed(digits)}${unit || ''}`;
}

function fillBreakdown(dim, counts, total) {
  const ul = document.querySelector(`[data-breakdown="${dim}"]`);
  const rows = Object.entries(counts).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  ul.replaceChildren(...rows.map(([name, n]) => {
    const li = document.createElement('li');
    li.dataset.name = name;
    li.dataset.count = String(n);
    const pct = total > 0 ? Math.round((100 * n) / total) : 0;
    li.textContent = `${name}: ${n} (${pct}%)`;
    return li;
  }));
}

function render(d) {
  const v = d.viewers;
  text('interval', `${new Date(v.interval_start).toISOString().slice(11, 19)} UTC, ${d.interval_s} s`);
  text('updated', new Date(d.now).toISOString().slice(11, 19));
  text('viewers_total', String(v.viewers_total));
  text('viewers_active', String(v.viewers_active));
  text('play_time_avg', fixed(v.play_time_avg, 1, ' s'));
  text('bitrate_min', fixed(v.bitrate_min, 0));
  text('bitrate_avg', fixed(v.bitrate_avg, 0));
  text('bitrate_max', fixed(v.bitrate_max, 0, ' kbit/s'));
  for (const dim of ['device', 'os', 'browser']) fillBreakdown(dim, v[dim], v.viewers_total);
  const [now, last] = d.minutes;
  const pair = (k) => `${now[k]} / ${last[k]}`;
  text('admissions_per_min', pair('admissions'));
  text('refusals_per_min', pair('refusals'));
  text('evictions_per_min', pair('evictions'));
  text('stops_per_min', pair('stops'));
  text('accounts_at_limit', pair('accounts_at_limit'));
  const main = document.getElementById('dashboard');
  main.dataset.ready = 'true';
  main.dataset.viewersTotal = String(v.viewers_total);
}

async function poll() {
  try {
    const r = await fetch('/dashboard/data', { cache: 'no-store' });
    if (r.ok) render(await r.json());
    else text('updated', `error ${r.status}`);
  } catch (e) {
    text('updated', `unreachable (${e.message})`);
  }
  setTimeout(poll, POLL_MS);
}

poll();
