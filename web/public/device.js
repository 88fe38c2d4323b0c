// The hb device page: one browser tab is one device. It asks its backend whether it may play,
// heartbeats over MQTT 5 WebSockets with the token from the answer, renews the token before it
// expires, obeys stops from its control topic and shows the live viewer count of what it plays.
// docs/BROWSER.md walks through this file; read it top to bottom.
'use strict';

// ---- What to play, and where ------------------------------------------------------------------
// A real player knows the account from its login session; the demo takes it from the URL:
// /?account=acct1&media=film-1&group=studio-x&bitrate=4500
const params = new URLSearchParams(location.search);
const account = params.get('account') || 'demo';
const media = params.get('media') || 'big-buck-bunny';
const group = params.get('group') || null;
const bitrate = Number(params.get('bitrate') || 4500);
// backup_delete=0 leaves a closed tab's slot to its stop heartbeat alone (for the tests).
const backupDelete = params.get('backup_delete') !== '0';

const $ = (id) => document.getElementById(id);
const ui = {
  state: $('state'), message: $('message'), watching: $('watching'), others: $('others'),
  othersList: $('others-list'), play: $('play'), stop: $('stop'), log: $('log'),
};

// Everything the page knows; window.hbDevice lets a test (or a curious developer) read it.
const device = {
  id: null, state: 'starting', config: null, client: null, token: null, expiresAt: 0,
  heartbeatSeconds: 10, seq: 0, startedAt: 0, renewals: 0, connects: 0, watching: null,
  stopReason: null, heartbeatTimer: null, renewTimer: null, lastPubackError: null,
};
window.hbDevice = device;

// ---- A device id per tab that survives reloads ------------------------------------------------
// sessionStorage keeps a tab's id across reloads; localStorage remembers the ids this browser
// profile has used, so a new tab after a restart takes one back instead of inventing another.
// An id is used by one tab at a time: the tab holds a Web Lock named after it for as long as it
// lives (the browser releases it when the tab goes, even on a crash), so a second tab, or a
// duplicated tab that copied sessionStorage, finds the lock taken and uses another id.
const REGISTRY = 'hb.devices';
const REGISTRY_MAX = 16;

function newDeviceId() {
  const bytes = crypto.getRandomValues(new Uint8Array(5));
  return 'web-' + Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

// Resolves true when this tab now holds id. waitMs > 0 waits that long for the lock (a reload:
// the previous document of this tab may not have let go yet); 0 takes it only if free.
function holdId(id, waitMs) {
  if (!navigator.locks) return probeByBroadcast(id);
  return new Promise((resolve) => {
    const options = waitMs > 0 ? { signal: AbortSignal.timeout(waitMs) } : { ifAvailable: true };
    navigator.locks.request('hb-device:' + id, options, (lock) => {
      if (!lock) return resolve(false);
      resolve(true);
      answerProbes(id);
      return new Promise(() => {}); // held until the tab goes away
    }).catch(() => resolve(false)); // timed out: another tab holds it
  });
}

// Without Web Locks (a page served over plain http from another host is not a secure context):
// ask the other tabs of this profile whether one of them plays with id.
const tabs = 'BroadcastChannel' in window ? new BroadcastChannel('hb-devices') : null;
function answerProbes(id) {
  if (tabs) tabs.onmessage = (e) => e.data.who === id && tabs.postMessage({ mine: id });
}
function probeByBroadcast(id) {
  if (!tabs) return Promise.resolve(true);
  return new Promise((resolve) => {
    const seen = (e) => e.data.mine === id && done(false);
    const done = (free) => { tabs.removeEventListener('message', seen); resolve(free); };
    tabs.addEventListener('message', seen);
    tabs.postMessage({ who: id });
    setTimeout(() => { done(true); answerProbes(id); }, 300);
  });
}

async function claimDeviceId() {
  const registry = JSON.parse(localStorage.getItem(REGISTRY) || '[]');
  const own = sessionStorage.getItem('hb.device');
  let id = null;
  if (own && (await holdId(own, 1500))) id = own;
  for (const known of registry) {
    if (id) break;
    if (known !== own && (await holdId(known, 0))) id = known;
  }
  if (!id) {
    id = newDeviceId();
    await holdId(id, 0);
  }
  sessionStorage.setItem('hb.device', id);
  const updated = [id, ...registry.filter((k) => k !== id)].slice(0, REGISTRY_MAX);
  localStorage.setItem(REGISTRY, JSON.stringify(updated));
  return id;
}

// ---- The backend: may this device play? ------------------------------------------------------
// hb-api's demo routes stand in for the video platform's backend, which would call
// POST /v1/plays with its API key. The answer is the same: 200 with a token, or 409 with the
// devices that hold the slots.
async function askToPlay() {
  const response = await fetch('/demo/plays', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ account, device: device.id, media, ...(group ? { group } : {}) }),
  });
  const body = await response.json();
  if (response.status === 200 || response.status === 409) return body;
  throw new Error(`admission answered HTTP ${response.status}: ${body.error || ''}`);
}

function releaseSlot(id, keepalive) {
  const path = `/demo/plays/${encodeURIComponent(account)}/${encodeURIComponent(id)}`;
  return fetch(path, { method: 'DELETE', keepalive });
}

// ---- Playing ------------------------------------------------------------------------------------
async function play() {
  clearOthers();
  setState('asking', 'Asking to play…');
  let answer;
  try {
    answer = await askToPlay();
  } catch (e) {
    return setState('error', 'Cannot reach the service', String(e));
  }
  if (!answer.allow) return showRefusal(answer);
  device.startedAt = device.startedAt || Date.now();
  useAnswer(answer);
  connect();
}

// Keeps the token and schedules its renewal: well before it expires (a fifth of its lifetime,
// at least two heartbeat periods), so a slow answer never lets it lapse.
function useAnswer(answer) {
  device.token = answer.token;
  device.expiresAt = answer.expires_at * 1000;
  device.heartbeatSeconds = answer.heartbeat_seconds;
  const lifetime = device.expiresAt - Date.now();
  const margin = Math.min(Math.max(lifetime / 5, 2000 * device.heartbeatSeconds), lifetime / 2);
  clearTimeout(device.renewTimer);
  device.renewTimer = setTimeout(renew, Math.max(lifetime - margin, 0));
}

function connect() {
  const c = device.config;
  if (device.client) device.client.end(true);
  // MQTT 5 (protocolVersion 5): only MQTT 5 says why a publish was refused; with 3.1.1 a
  // denied publish looks acknowledged. clientId must be the device id the token is pinned to.
  // reconnectOnConnackError: after a refused CONNECT (an expired token) mqtt.js otherwise stops
  // retrying for good; with it, it retries, and onError below fetches a fresh token first.
  const client = mqtt.connect(c.mqtt_url, {
    protocolVersion: 5,
    clientId: device.id,
    username: account,
    password: device.token,
    clean: true,
    keepalive: 30,
    reconnectPeriod: 1000,
    connectTimeout: 10000,
    reconnectOnConnackError: true,
  });
  device.client = client;
  client.on('connect', onConnect);
  client.on('message', onMessage);
  client.on('error', onError);
  client.on('disconnect', (packet) => log(`broker disconnected us: reason ${packet.reasonCode}`));
  client.on('close', () => device.state === 'playing' && log('connection closed'));
}

const heartbeatTopic = () => `${device.config.topic_prefix}/${account}/${device.id}`;
const controlTopic = () => `${device.config.control_prefix}/${account}/${device.id}`;
const liveTopic = () => `${device.config.live_prefix}/${media}`;

function onConnect() {
  device.connects += 1;
  log(`connected (${device.connects})`);
  device.client.subscribe([controlTopic(), liveTopic()], { qos: 1 }, (err, granted) => {
    if (err) return log(`subscribe failed: ${err.message}`);
    for (const g of granted) if (g.qos >= 128) log(`subscribe ${g.topic} refused: ${g.qos}`);
  });
  setState('playing', 'Playing');
  heartbeat(); // at once: a reconnect leaves no hole in the counts
  clearInterval(device.heartbeatTimer);
  device.heartbeatTimer = setInterval(heartbeat, device.heartbeatSeconds * 1000);
}

function agent() {
  const ua = navigator.userAgent;
  const os = /Android/.test(ua) ? 'Android' : /iPhone|iPad|iPod/.test(ua) ? 'iOS'
    : /Windows/.test(ua) ? 'Windows' : /Mac OS X/.test(ua) ? 'macOS'
    : /CrOS/.test(ua) ? 'ChromeOS' : /Linux/.test(ua) ? 'Linux' : 'Other';
  const browser = /Edg\//.test(ua) ? 'Edge' : /OPR\//.test(ua) ? 'Opera'
    : /Firefox\//.test(ua) ? 'Firefox' : /Chrom(e|ium)\//.test(ua) ? 'Chrome'
    : /Safari\//.test(ua) ? 'Safari' : 'Other';
  const type = /iPad|Tablet/.test(ua) ? 'tablet' : /Mobi|iPhone/.test(ua) ? 'mobile' : 'desktop';
  return { os, browser, device: type };
}
const myAgent = agent();

// One heartbeat: QoS 1, so the broker's PUBACK says whether it was accepted (MQTT 5 reason
// code 135 "Not authorized" when the token does not allow the topic). extra adds fields
// ({state: "stopped"} for the stop heartbeat).
function heartbeat(extra) {
  const client = device.client;
  if (!client || !client.connected) return;
  const payload = {
    ts: Date.now(), seq: ++device.seq, mediaId: media, bitrate,
    playTime: Math.round((Date.now() - device.startedAt) / 100) / 10, agent: myAgent, ...extra,
  };
  client.publish(heartbeatTopic(), JSON.stringify(payload), { qos: 1 }, (err, packet) => {
    const code = err ? err.code : packet && packet.reasonCode;
    if (code >= 128) {
      device.lastPubackError = code;
      log(`heartbeat ${payload.seq} refused by the broker: reason ${code}`);
    }
  });
}

// ---- Renewal ------------------------------------------------------------------------------------
// Asking again while active is admitted again (never counted twice) with a fresh token. The new
// token goes into the connect options, then the client reconnects at once: the broker sees a
// clean DISCONNECT and a CONNECT a few milliseconds apart, and onConnect heartbeats at once.
async function renew() {
  if (device.state !== 'playing') return;
  let answer;
  try {
    answer = await askToPlay();
  } catch (e) {
    log(`renewal failed, retrying: ${e}`);
    device.renewTimer = setTimeout(renew, 2000);
    return;
  }
  if (!answer.allow) return stopPlayback(answer.reason);
  useAnswer(answer);
  device.renewals += 1;
  log(`token renewed (${device.renewals}), reconnecting`);
  device.client.options.password = device.token;
  device.client.reconnect();
}

// A refused CONNECT (134 bad user name or password, 135 not authorized: an expired token) or a
// denied publish: get a fresh token; mqtt.js keeps reconnecting with whatever password is set.
function onError(err) {
  log(`mqtt error: ${err.message} (code ${err.code})`);
  if ((err.code === 134 || err.code === 135) && device.state === 'playing') {
    clearTimeout(device.renewTimer);
    renew();
  }
}

// ---- Stops ------------------------------------------------------------------------------------
const stopTexts = {
  evicted: 'Playback stopped: too many screens on this account',
  account_limit: 'Playback stopped: too many screens on this account',
  group_limit: 'Playback stopped: too many screens for this title on this account',
  released: 'Playback stopped from another screen',
};

function onMessage(topic, payload) {
  let msg;
  try {
    msg = JSON.parse(payload.toString());
  } catch (e) {
    return log(`unreadable message on ${topic}`);
  }
  if (topic === controlTopic() && msg.action === 'stop') {
    log(`stop from the service: ${msg.reason}`);
    // The first stop says why: a heartbeat already on its way when this device was evicted can
    // earn a second stop (account_limit) from the consumer's enforcement; it changes nothing.
    if (device.state === 'stopped') return;
    stopPlayback(msg.reason);
  } else if (topic === liveTopic() && Number.isInteger(msg.watching)) {
    device.watching = msg.watching;
    ui.watching.hidden = false;
    ui.watching.textContent = `${msg.watching} watching now`;
  }
}

// The service took the slot away: stop without a stop heartbeat (the slot is already gone) and
// show who holds the slots, with a button to stop one of them.
async function stopPlayback(reason) {
  endConnection();
  device.stopReason = reason;
  setState('stopped', 'Stopped', stopTexts[reason] || `Playback stopped (${reason})`);
  if (reason === 'released') return;
  const r = await fetch(`/demo/accounts/${encodeURIComponent(account)}`);
  if (r.ok) showOthers((await r.json()).active);
}

// The user stops, or the tab closes: a stop heartbeat frees the slot at once (the consumer
// releases it), and the backend's DELETE does the same in case the heartbeat never arrives.
function stopByUser(closing) {
  if (device.state === 'playing') {
    heartbeat({ state: 'stopped' });
    // mqtt.js corks its stream and writes on the next tick, which never comes in a closing
    // tab: uncork now, so the packet is handed to the WebSocket before the page goes.
    if (device.client.stream && device.client.stream.uncork) device.client.stream.uncork();
  }
  if (backupDelete && (device.state === 'playing' || device.state === 'asking')) {
    releaseSlot(device.id, true);
  }
  endConnection();
  if (!closing) setState('stopped', 'Stopped', 'You stopped playback');
}

function endConnection() {
  clearInterval(device.heartbeatTimer);
  clearTimeout(device.renewTimer);
  device.heartbeatTimer = device.renewTimer = null;
  if (device.client) device.client.end(false); // flushes the stop heartbeat, then DISCONNECT
  device.client = null;
}

// ---- The "pick which device to stop" flow ---------------------------------------------------------
function showRefusal(answer) {
  const why = answer.reason === 'group_limit' ? 'for this title' : 'on this account';
  setState('refused', 'Not playing', `Too many screens ${why} (limit ${answer.limit}). ` +
    'Stop one of them to play here.');
  showOthers(answer.active);
}

function showOthers(active) {
  ui.othersList.replaceChildren();
  for (const other of active.filter((a) => a.device !== device.id)) {
    const li = document.createElement('li');
    const since = new Date(other.since * 1000).toLocaleTimeString();
    li.textContent = `${other.device} — ${other.media || 'unknown title'}, since ${since}`;
    li.dataset.device = other.device;
    const button = document.createElement('button');
    button.type = 'button';
    button.textContent = 'Stop this screen';
    button.onclick = async () => {
      button.disabled = true;
      await releaseSlot(other.device, false);
      play();
    };
    li.append(button);
    ui.othersList.append(li);
  }
  ui.others.hidden = false;
}

function clearOthers() {
  ui.others.hidden = true;
  ui.othersList.replaceChildren();
}

// ---- The page -------------------------------------------------------------------------------------
function setState(state, text, message) {
  device.state = state;
  ui.state.dataset.state = state;
  ui.state.textContent = text;
  ui.message.textContent = message || '';
  ui.play.disabled = state === 'playing' || state === 'asking';
  ui.stop.disabled = state !== 'playing';
  if (state !== 'playing') ui.watching.hidden = true;
}

function log(text) {
  const li = document.createElement('li');
  li.textContent = `${new Date().toLocaleTimeString()} ${text}`;
  ui.log.append(li);
  while (ui.log.children.length > 50) ui.log.firstChild.remove();
}

async function main() {
  $('account').textContent = account;
  $('media').textContent = media;
  ui.play.onclick = play;
  ui.stop.onclick = () => stopByUser(false);
  addEventListener('pagehide', () => stopByUser(true));
  device.config = await (await fetch('/demo/config')).json();
  device.id = await claimDeviceId();
  $('device').textContent = device.id;
  if (params.get('autoplay') === '0') setState('idle', 'Ready');
  else play();
}

main().catch((e) => setState('error', 'Cannot start', String(e)));
