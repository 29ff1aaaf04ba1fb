// capstan's dashboard: one page, plain JavaScript, no build step and no library. Every view is
// drawn from the server's APIs (docs/api.md) with the token the user signed in with (kept in
// sessionStorage: this tab only). Live numbers come from GET /api/v1/stream (server-sent
// events, read with fetch so that the Authorization header goes with it) and are kept for the
// last five minutes in memory. Plots are drawn on <canvas>: a few hundred points a second need
// no charting library, and the page then loads three small files and nothing else.
'use strict';

const HISTORY = 300; // seconds of live samples kept per model
const ROLES = ['none', 'viewer', 'invoker', 'deployer', 'admin'];
const COLORS = ['#1f5f8b', '#d9730d', '#1a7f37', '#8250df', '#cf222e', '#0a7f8f', '#9a6700', '#57606a'];

const state = {
  token: sessionStorage.getItem('capstan.token') || '',
  who: null,             // GET /api/v1/whoami
  live: new Map(),       // "model/version" -> {name, version, t[], throughput[], ...}
  lastEvent: null,       // the newest stream event
  listeners: new Set(),  // views that redraw on every event
  timers: [],            // the current view's intervals
};

// --- small helpers --------------------------------------------------------------------------

// Builds an element: h('td', {class: 'x', onclick: f}, 'text', child...). Text is never parsed
// as HTML, so names from the registry cannot inject markup.
function h(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'style') Object.assign(e.style, v);
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const k of kids.flat(Infinity)) {
    if (k === null || k === undefined || k === false) continue;
    e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  }
  return e;
}

const can = (role) => state.who && ROLES.indexOf(state.who.role) >= ROLES.indexOf(role);
const fmt = (v, d = 1) => (v === null || v === undefined || Number.isNaN(v)) ? '–' : Number(v).toFixed(d);
const enc = encodeURIComponent;

function bytes(n) {
  if (n === undefined || n === null) return '–';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n) + ' ' + u[i];
}

// A Kubernetes quantity ("16Gi", "1500m", "2") as a number.
function quantity(q) {
  if (typeof q === 'number') return q;
  const m = /^([0-9.]+)([a-zA-Z]*)$/.exec(String(q || '0'));
  if (!m) return 0;
  const mult = {'': 1, m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, Ki: 1024, Mi: 1024 ** 2,
    Gi: 1024 ** 3, Ti: 1024 ** 4};
  return parseFloat(m[1]) * (mult[m[2]] || 1);
}

function toast(msg) {
  const d = h('div', {}, msg);
  document.getElementById('toast').append(d);
  setTimeout(() => d.remove(), 5000);
}

class ApiError extends Error {
  constructor(status, msg) { super(msg); this.status = status; }
}

// Calls the API with the token; resolves to the parsed JSON (null for 204), throws ApiError.
async function api(method, path, body) {
  const headers = {};
  if (state.token) headers.Authorization = 'Bearer ' + state.token;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(path, {method, headers, body: body === undefined ? undefined : JSON.stringify(body)});
  const text = await res.text();
  let j = null;
  try { j = text ? JSON.parse(text) : null; } catch (e) { j = {error: text}; }
  if (!res.ok) throw new ApiError(res.status, (j && j.error) || res.statusText);
  return j;
}
const get = (path) => api('GET', path);

// Asks before a change: resolves true when the user confirms.
function confirmAction(text) {
  const d = document.getElementById('confirm');
  document.getElementById('confirm-text').textContent = text;
  return new Promise((resolve) => {
    d.addEventListener('close', () => resolve(d.returnValue === 'ok'), {once: true});
    d.returnValue = '';
    d.showModal();
    document.getElementById('confirm-ok').focus();
  });
}

// A change the user confirms first, the one path every mutating button takes: asks
// `question`, then awaits call(); a toast says `done` or the API's error text, and after()
// runs either way so the page shows what is now true. Cancelling changes and redraws nothing.
async function confirmed(question, call, done, after) {
  if (!await confirmAction(question)) return;
  try { await call(); toast(done); } catch (e) { toast(e.message); }
  after();
}

function table(head, rows, empty) {
  if (!rows.length) return h('p', {class: 'muted'}, empty || 'None.');
  return h('div', {class: 'scroll'}, h('table', {},
    h('thead', {}, h('tr', {}, head.map((c) => h('th', {scope: 'col'}, c)))),
    h('tbody', {}, rows.map((r) => h('tr', {}, r.map((c) => h('td', {}, c)))))));
}

const chip = (text) => h('span', {class: 'chip ' + text}, text);

function splitBar(traffic) {
  const total = traffic.reduce((s, t) => s + (t.percent || 0), 0) || 1;
  return h('div', {class: 'split', role: 'img',
    'aria-label': 'traffic: ' + traffic.map((t) => `version ${t.version} ${t.percent}%`).join(', ')},
  traffic.map((t, i) => h('span', {style: {width: (100 * (t.percent || 0) / total) + '%',
    background: COLORS[i % COLORS.length]}, title: `v${t.version} ${t.percent}%`}, `v${t.version} ${t.percent}%`)));
}

// --- plots ----------------------------------------------------------------------------------

// Draws series [{label, values[], color}] over times t[] (seconds) on a canvas, with a y axis
// from 0 to the highest value and a time axis of the last `span` seconds. Sets an aria-label
// with the latest values for screen readers.
function plot(canvas, t, series, unit, span = HISTORY) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || 300, hgt = canvas.clientHeight || 160;
  if (canvas.width !== w * dpr) { canvas.width = w * dpr; canvas.height = hgt * dpr; }
  const c = canvas.getContext('2d');
  c.setTransform(dpr, 0, 0, dpr, 0, 0);
  c.clearRect(0, 0, w, hgt);
  const L = 44, R = 8, T = 8, B = 20;
  let max = 0;
  for (const s of series) for (const v of s.values) if (v !== null && v > max) max = v;
  max = max > 0 ? niceMax(max) : 1;
  const now = t.length ? t[t.length - 1] : Date.now() / 1000;
  const x = (ti) => L + (w - L - R) * (1 - (now - ti) / span);
  const y = (v) => T + (hgt - T - B) * (1 - v / max);
  c.strokeStyle = '#d0d7de'; c.fillStyle = '#57606a'; c.font = '11px sans-serif'; c.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const v = max * i / 4, yy = Math.round(y(v)) + 0.5;
    c.beginPath(); c.moveTo(L, yy); c.lineTo(w - R, yy); c.stroke();
    c.textAlign = 'right'; c.textBaseline = 'middle';
    c.fillText(v >= 100 ? v.toFixed(0) : v.toPrecision(2), L - 4, yy);
  }
  c.textBaseline = 'top';
  for (let s = 0; s <= span; s += span / 5) {
    c.textAlign = s ? 'center' : 'right';
    c.fillText(s ? `-${s}s` : 'now', x(now - s), hgt - B + 4);
  }
  for (const s of series) {
    c.strokeStyle = s.color; c.lineWidth = 2; c.beginPath();
    let on = false;
    s.values.forEach((v, i) => {
      if (v === null || now - t[i] > span) { on = false; return; }
      if (on) c.lineTo(x(t[i]), y(v)); else c.moveTo(x(t[i]), y(v));
      on = true;
    });
    c.stroke();
  }
  canvas.setAttribute('aria-label', series.map((s) =>
    `${s.label}: ${fmt(s.values[s.values.length - 1], 2)} ${unit}`).join(', '));
}

function niceMax(v) {
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

function plotCard(title, unit, draw) {
  const canvas = h('canvas', {role: 'img', 'aria-label': title});
  const legend = h('div', {class: 'legend'});
  const card = h('div', {class: 'plot'}, h('h3', {}, `${title} (${unit})`), canvas, legend);
  card.redraw = () => {
    const {t, series} = draw();
    plot(canvas, t, series, unit);
    legend.replaceChildren(...series.map((s) => h('span', {}, h('i', {style: {background: s.color}}),
      `${s.label} ${fmt(s.values[s.values.length - 1], 2)}`)));
  };
  return card;
}

// --- the live stream --------------------------------------------------------------------------

function onEvent(ev) {
  state.lastEvent = ev;
  const t = ev.t / 1000;
  const seen = new Set();
  for (const m of ev.models) {
    const key = m.name + '/' + m.version;
    seen.add(key);
    let s = state.live.get(key);
    if (!s) {
      s = {name: m.name, version: m.version, t: [], throughput: [], errors: [], p50: [], p99: [], queue: [], batch: []};
      state.live.set(key, s);
    }
    s.t.push(t); s.throughput.push(m.throughput); s.errors.push(m.errors);
    s.p50.push(m.p50_ms); s.p99.push(m.p99_ms); s.queue.push(m.queue); s.batch.push(m.batch);
    if (s.t.length > HISTORY) for (const k of ['t', 'throughput', 'errors', 'p50', 'p99', 'queue', 'batch']) s[k].shift();
  }
  for (const [key, s] of state.live) if (!seen.has(key) && t - s.t[s.t.length - 1] > HISTORY) state.live.delete(key);
  for (const f of state.listeners) f(ev);
}

let streaming = false;
async function streamLoop() {
  if (streaming) return;
  streaming = true;
  const dec = new TextDecoder();
  while (can('viewer')) {
    try {
      const res = await fetch('/api/v1/stream', {headers: state.token ? {Authorization: 'Bearer ' + state.token} : {}});
      if (!res.ok) throw new Error('stream: ' + res.status);
      const reader = res.body.getReader();
      let buf = '';
      for (;;) {
        const {value, done} = await reader.read();
        if (done) break;
        buf += dec.decode(value, {stream: true});
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const chunk = buf.slice(0, i);
          buf = buf.slice(i + 2);
          for (const line of chunk.split('\n')) if (line.startsWith('data: ')) onEvent(JSON.parse(line.slice(6)));
        }
      }
    } catch (e) { /* the server restarted or shed the stream: try again */ }
    await new Promise((r) => setTimeout(r, 2000));
  }
  streaming = false;
}

// --- sign-in ----------------------------------------------------------------------------------

async function whoami() {
  try { state.who = await get('/api/v1/whoami'); } catch (e) { state.who = {role: 'none', auth: true, error: e.message}; }
  const who = document.getElementById('who');
  if (state.who.auth && state.who.role !== 'none') {
    who.replaceChildren(h('span', {}, `${state.who.name} (${state.who.role})`),
      h('button', {type: 'button', onclick: signOut}, 'Sign out'));
  } else {
    who.replaceChildren(state.who.auth ? '' : h('span', {class: 'muted'}, 'authentication off'));
  }
}

function signOut() {
  sessionStorage.removeItem('capstan.token');
  state.token = '';
  location.hash = '#/';
  start();
}

function signInView(main) {
  const input = h('input', {type: 'password', id: 'token', name: 'token', autocomplete: 'off', required: true});
  const msg = h('p', {class: 'error', role: 'alert'});
  const form = h('form', {class: 'form', onsubmit: async (e) => {
    e.preventDefault();
    state.token = input.value.trim();
    await whoami();
    if (state.who.role === 'none') {
      msg.textContent = 'That token is not valid (unknown, expired or revoked).';
      state.token = '';
      return;
    }
    sessionStorage.setItem('capstan.token', state.token);
    start();
  }},
  h('label', {for: 'token'}, 'API token'), input,
  h('p', {class: 'muted'}, 'The token is kept for this tab only. `capstan token create` makes one; the first admin token is in DATA_DIR/admin.token.'),
  h('div', {class: 'row'}, h('button', {type: 'submit', class: 'primary'}, 'Sign in')), msg);
  main.replaceChildren(h('h1', {}, 'Sign in'), form);
  input.focus();
}

// --- views ----------------------------------------------------------------------------------

// Each view fills main and may register timers (cleared on the next view) and stream
// listeners (removed likewise).
function every(ms, f) { f(); state.timers.push(setInterval(f, ms)); }
function listen(f) { state.listeners.add(f); }

async function overview(main) {
  const cards = h('div', {class: 'cards'});
  const models = h('div', {}, h('p', {class: 'muted'}, 'Loading…'));
  const deps = h('div', {});
  const served = h('div', {});
  main.replaceChildren(h('h1', {}, 'Overview'), cards, h('h2', {}, 'Models'), models,
    h('h2', {}, 'Deployments'), deps, h('h2', {}, 'Served now'), served);
  let nModels = 0, nDeps = 0;
  const drawCards = () => {
    const ev = state.lastEvent;
    const sum = (k) => ev ? ev.models.reduce((s, m) => s + (m[k] || 0), 0) : null;
    cards.replaceChildren(
      h('div', {class: 'card'}, h('div', {class: 'big'}, nModels), h('div', {class: 'label'}, 'models in the registry')),
      h('div', {class: 'card'}, h('div', {class: 'big'}, nDeps), h('div', {class: 'label'}, 'deployments')),
      h('div', {class: 'card'}, h('div', {class: 'big', id: 'rate'}, fmt(sum('throughput'))), h('div', {class: 'label'}, 'requests / s')),
      h('div', {class: 'card'}, h('div', {class: 'big'}, fmt(sum('errors'))), h('div', {class: 'label'}, 'errors / s')));
    served.replaceChildren(table(['Model', 'Version', 'Requests/s', 'Errors/s', 'p99 (ms)', 'Queue'],
      (ev ? ev.models : []).map((m) => [m.name, m.version, fmt(m.throughput), fmt(m.errors), fmt(m.p99_ms, 2), m.queue]),
      'No model is loaded.'));
  };
  listen(drawCards);
  drawCards();
  every(2000, async () => {
    try {
      const [ms, ds] = await Promise.all([get('/api/v1/models?limit=200'), get('/api/v1/deployments')]);
      nModels = ms.items.length;
      nDeps = ds.items.length;
      models.replaceChildren(table(['Name', 'Description', 'Labels', 'Created'], ms.items.map((m) => [
        h('a', {href: '#/model/' + enc(m.name)}, m.name), m.description || '',
        Object.entries(m.labels || {}).map(([k, v]) => h('code', {}, `${k}=${v} `)),
        `${m.created_at || ''} ${m.created_by ? 'by ' + m.created_by : ''}`]), 'No model yet: `capstan model push NAME FILE.onnx` adds one.'));
      deps.replaceChildren(deploymentTable(ds.items));
      drawCards();
    } catch (e) {
      models.replaceChildren(h('p', {class: 'muted'}, e.status === 404 ? 'This server runs without a registry.' : e.message));
    }
  });
}

function deploymentTable(items) {
  return table(['Name', 'Model', 'Traffic', 'Ready / desired', 'Instances'], items.map((d) => {
    const st = d.status || {};
    const counts = {};
    for (const i of st.instances || []) counts[i.state] = (counts[i.state] || 0) + 1;
    return [h('a', {href: '#/deployment/' + enc(d.metadata.name)}, d.metadata.name), d.spec.model,
      splitBar(st.traffic || []), `${st.readyInstances ?? 0} / ${st.desiredInstances ?? 0}`,
      [Object.entries(counts).map(([s, n]) => chip(`${n} ${s}`)), st.reason ? h('div', {class: 'muted'}, st.reason) : null]];
  }), 'No deployment: `capstan apply -f deployment.yaml` creates one.');
}

function ioSchema(v) {
  const io = (v.io_schema || v.io || {});
  const list = (xs) => (xs || []).map((x) => `${x.name}: ${x.datatype || x.dtype || ''}[${(x.shape || []).join(',')}]`).join('; ');
  return h('span', {class: 'mono'}, `in ${list(io.inputs)} → out ${list(io.outputs)}`);
}

async function modelView(main, name) {
  const body = h('div', {}, h('p', {class: 'muted'}, 'Loading…'));
  main.replaceChildren(h('h1', {}, 'Model ', h('code', {}, name)), body);
  const draw = async () => {
    try {
      const [m, vs, audit] = await Promise.all([get('/api/v1/models/' + enc(name)),
        get(`/api/v1/models/${enc(name)}/versions?limit=200`), get(`/api/v1/audit?model=${enc(name)}&limit=20`)]);
      const deployer = can('deployer');
      const ready = vs.items.filter((v) => v.state === 'ready');
      const aliasRows = Object.entries(m.aliases || {}).map(([a, v]) => {
        const sel = h('select', {id: 'move-' + a, 'aria-label': `new version for alias ${a}`},
          ready.map((x) => h('option', {value: x.version, selected: x.version === v}, 'v' + x.version)));
        return [h('code', {}, a), 'v' + v, deployer ? h('div', {class: 'row'}, sel, h('button', {type: 'button', class: 'move',
          onclick: () => {
            const to = Number(sel.value);
            if (to !== v) confirmed(`Move alias ${a} of ${name} from v${v} to v${to}? Traffic to ${name}:${a} moves at once.`,
              () => api('PUT', `/api/v1/models/${enc(name)}/aliases/${enc(a)}`, {version: to}), `${a} now points to v${to}`, draw);
          }}, 'Move')) : null];
      });
      const head = ['Version', 'State', 'Digest', 'Size', 'IO schema', 'Lineage', 'Labels', 'Created'];
      if (deployer) head.push('Actions');
      const versionRows = vs.items.map((v) => {
        const lin = v.lineage || {};
        const row = ['v' + v.version, chip(v.state), h('code', {title: v.digest}, (v.digest || '').replace('sha256:', '').slice(0, 12)),
          bytes(v.size), ioSchema(v),
          [v.description ? h('div', {class: 'desc'}, v.description) : null,
            lin.source_uri ? h('div', {}, lin.source_uri) : null, lin.run_id ? h('div', {}, 'run ' + lin.run_id) : null,
            lin.parent_version ? h('div', {}, 'from ' + lin.parent_version) : null,
            lin.dataset_digest ? h('div', {class: 'mono'}, 'data ' + lin.dataset_digest.slice(0, 19)) : null],
          Object.entries(v.labels || {}).map(([k, x]) => h('div', {}, h('code', {}, `${k}=${x}`))),
          `${v.created_at || ''} ${v.created_by ? 'by ' + v.created_by : ''}`];
        if (deployer) row.push(v.state === 'ready' ? h('button', {type: 'button', class: 'danger archive', 'aria-label': `archive v${v.version}`,
          onclick: () => confirmed(`Archive version ${v.version} of ${name}? It will no longer be served or be latest.`,
            () => api('PATCH', `/api/v1/models/${enc(name)}/versions/${v.version}`, {state: 'archived'}), `v${v.version} archived`, draw)}, 'Archive') : '');
        return row;
      });
      body.replaceChildren(
        m.description ? h('p', {}, m.description) : '',
        h('div', {class: 'row'}, Object.entries(m.labels || {}).map(([k, x]) => h('code', {class: 'chip'}, `${k}=${x}`))),
        h('h2', {}, 'Aliases'), table(['Alias', 'Version', deployer ? 'Move to' : null].filter(Boolean), aliasRows, 'No alias: /v2/models/' + name + ' serves latest.'),
        h('h2', {}, 'Versions'), table(head, versionRows),
        h('h2', {}, 'Audit trail'), table(['When', 'Who', 'What', 'Version', 'Alias'], audit.items.map((a) =>
          [a.at, a.actor, h('code', {}, a.action), a.version ? 'v' + a.version : '', a.alias || ''])));
    } catch (e) {
      body.replaceChildren(h('p', {class: 'error'}, e.message));
    }
  };
  draw();
}

// The rollout buttons a token may use (routes.c: POST .../rollout/promote|abort|undo need
// `deployer`): Promote and Abort while a rollout is in progress, Undo at any time (the API
// answers 409 with the reason when there is nothing to go back to). rollout() gives the
// newest status.rollout when a button is pressed; after() redraws the page.
function rolloutButtons(name, rollout, after) {
  if (!can('deployer')) return [];
  const act = (what, question, done) => () => confirmed(question(rollout()),
    () => api('POST', `/api/v1/deployments/${enc(name)}/rollout/${what}`), done, after);
  const ro = rollout();
  const live = ro && (ro.phase === 'Progressing' || ro.phase === 'Paused');
  return [
    live ? h('button', {type: 'button', class: 'primary promote', title: 'the canary takes all traffic now',
      onclick: act('promote', (r) => `Promote v${r.canary} of ${name}? It takes all traffic at once and the rollout ends.`,
        `${name}: canary promoted`)}, 'Promote') : null,
    live ? h('button', {type: 'button', class: 'danger abort', title: 'roll the canary back now',
      onclick: act('abort', (r) => `Abort the rollout of v${r.canary} of ${name}? v${r.stable} takes all traffic back at once.`,
        `${name}: rollout aborted`)}, 'Abort') : null,
    h('button', {type: 'button', class: 'undo', title: 'roll out the version served before',
      onclick: act('undo', (r) => `Undo the last rollout of ${name}? A rollout back to ${r && r.phase !== 'Succeeded' ?
        'v' + r.stable : 'the version served before'} starts now.`, `${name}: rolling back`)}, 'Undo'),
  ].filter(Boolean);
}

async function deploymentView(main, name) {
  const body = h('div', {}, h('p', {class: 'muted'}, 'Loading…'));
  const hist = {t: [], desired: [], ready: []};
  const chart = plotCard('Desired and ready instances', 'instances', () => ({t: hist.t, series: [
    {label: 'desired', values: hist.desired, color: COLORS[1]}, {label: 'ready', values: hist.ready, color: COLORS[2]}]}));
  // The buttons live outside what is redrawn every second, so that a focused one stays
  // focused; they are rebuilt only when the set on offer changes.
  const actions = h('div', {class: 'row', role: 'group', 'aria-label': 'Rollout actions'});
  const rolloutBox = h('div', {});
  const instances = h('div', {});
  const parts = h('div', {hidden: true}, h('h2', {}, 'Rollout'), actions, rolloutBox, h('h2', {}, 'Instances'), instances);
  const events = h('div', {});
  main.replaceChildren(h('h1', {}, 'Deployment ', h('code', {}, name)), body, parts, h('h2', {}, 'Desired vs ready'),
    h('div', {class: 'plots'}, chart), h('h2', {}, 'Recent events'), events);
  let claims = {}, ro = null, offered = null;
  const drawActions = () => {
    const buttons = rolloutButtons(name, () => ro, refresh);
    const key = buttons.map((b) => b.textContent).join();
    if (key === offered) return;
    offered = key;
    const focused = actions.contains(document.activeElement);
    actions.replaceChildren(...buttons);
    actions.hidden = !buttons.length;
    if (focused && buttons.length) buttons[0].focus();
  };
  const draw = async () => {
    try {
      const d = await get('/api/v1/deployments/' + enc(name));
      const st = d.status || {};
      hist.t.push(Date.now() / 1000); hist.desired.push(st.desiredInstances ?? 0); hist.ready.push(st.readyInstances ?? 0);
      if (hist.t.length > HISTORY) for (const k of ['t', 'desired', 'ready']) hist[k].shift();
      chart.redraw();
      ro = st.rollout;
      const spec = d.spec || {};
      body.replaceChildren(
        h('div', {class: 'cards'},
          h('div', {class: 'card'}, h('div', {class: 'big'}, `${st.readyInstances ?? 0} / ${st.desiredInstances ?? 0}`), h('div', {class: 'label'}, 'ready / desired')),
          h('div', {class: 'card'}, h('div', {class: 'big'}, h('a', {href: '#/model/' + enc(spec.model)}, spec.model)), h('div', {class: 'label'}, 'model')),
          h('div', {class: 'card'}, h('div', {class: 'big'}, st.panic ? 'panic' : 'stable'), h('div', {class: 'label'}, 'autoscaler mode'))),
        st.reason ? h('p', {class: 'error'}, st.reason) : '',
        h('h2', {}, 'Traffic'), splitBar(st.traffic || []));
      drawActions();
      rolloutBox.replaceChildren(ro ? table(['Phase', 'Stable', 'Canary', 'Step', 'Canary weight', 'Failed checks', 'Last check', 'Reason'],
        [[chip(ro.phase), 'v' + ro.stable, 'v' + ro.canary, ro.step, ro.canaryWeight + '%', ro.failedChecks,
          ro.lastCheck ? `${ro.lastCheck.requests} requests, ${fmt(ro.lastCheck.successRate)}% ok, p99 ${fmt(ro.lastCheck.p99Ms, 2)} ms` : '', ro.reason || '']])
        : h('p', {class: 'muted'}, 'No rollout in progress.'));
      instances.replaceChildren(table(['Instance', 'Version', 'State', 'Since', 'Devices', 'CPUs', 'Restarts', 'Reason'],
        (st.instances || []).map((i) => [i.name, 'v' + i.version, chip(i.state), i.since, i.claim ? claimDevices(claims[i.claim], i.claim) : h('span', {class: 'muted'}, 'none'),
          (i.cpus || []).join(', '), i.restarts, i.reason || '']), 'No instance.'));
      parts.hidden = false;
    } catch (e) {
      body.replaceChildren(h('p', {class: 'error'}, e.message));
      parts.hidden = true;
    }
  };
  const drawEvents = async () => {
    try {
      const [cl, audit] = await Promise.all([get('/api/v1/claims'), get('/api/v1/audit?limit=100')]);
      claims = Object.fromEntries(cl.items.map((c) => [c.metadata.name, c]));
      const mine = audit.items.filter((a) => a.action.startsWith('deployment.') &&
        ((a.after && a.after.name === name) || (a.before && a.before.name === name) || a.deployment === name || a.alias === name || JSON.stringify(a).includes(`"${name}"`)));
      events.replaceChildren(table(['When', 'Who', 'Event', 'Detail'], mine.slice(0, 20).map((a) =>
        [a.at, a.actor, h('code', {}, a.action), h('code', {}, eventDetail(a))]), 'No events yet.'));
    } catch (e) { events.replaceChildren(h('p', {class: 'error'}, e.message)); }
  };
  const refresh = () => { draw(); drawEvents(); };
  every(1000, draw);
  every(3000, drawEvents);
}

// An audit entry's change in one short line: a scale's from -> to, else its JSON, cut.
function eventDetail(a) {
  const d = a.after || a.detail || {};
  if (d.from !== undefined && d.to !== undefined) return `${d.from} → ${d.to}`;
  const text = JSON.stringify(d.spec ? {generation: (d.metadata || {}).generation, model: d.spec.model} : d);
  return text.length > 160 ? text.slice(0, 157) + '…' : text;
}

function claimDevices(claim, name) {
  const res = claim && claim.status && claim.status.allocation ? claim.status.allocation.devices.results : [];
  if (!res.length) return h('code', {}, name);
  return h('div', {}, h('code', {}, name), res.map((r) => h('div', {}, `${r.device}`,
    r.consumedCapacity ? h('span', {class: 'muted'}, ' ' + Object.entries(r.consumedCapacity).map(([k, v]) => `${k} ${v}`).join(', ')) : '')));
}

async function devicesView(main) {
  const body = h('div', {}, h('p', {class: 'muted'}, 'Loading…'));
  main.replaceChildren(h('h1', {}, 'Devices'), body);
  every(2000, async () => {
    try {
      const [sl, cl, ds] = await Promise.all([get('/api/v1/devices'), get('/api/v1/claims'),
        get('/api/v1/deployments').catch(() => ({items: []}))]);
      const uses = {}; // "driver/pool/device" -> [{claim, capacity}]
      const pending = [];
      for (const c of cl.items) {
        const alloc = c.status && c.status.allocation;
        if (!alloc) { pending.push([c.metadata.name, 'not allocated']); continue; }
        for (const r of alloc.devices.results) {
          const key = `${r.driver}/${r.pool}/${r.device}`;
          (uses[key] = uses[key] || []).push({claim: c.metadata.name, capacity: r.consumedCapacity || {}});
        }
      }
      for (const d of ds.items) {
        const st = d.status || {};
        if (st.reason && (st.readyInstances ?? 0) < (st.desiredInstances ?? 0)) pending.push([`deployment ${d.metadata.name}`, st.reason]);
      }
      const cards = [];
      for (const s of sl.items) {
        const spec = s.spec || {};
        for (const dev of spec.devices || []) {
          const key = `${spec.driver}/${spec.pool.name}/${dev.name}`;
          cards.push(deviceCard(spec, dev, uses[key] || []));
        }
      }
      body.replaceChildren(h('div', {class: 'grid'}, cards.length ? cards : h('p', {class: 'muted'}, 'No device was found.')),
        h('h2', {}, 'Pending claims'), table(['Claim', 'Reason'], pending, 'Nothing is waiting for a device.'),
        h('h2', {}, 'Claims'), table(['Claim', 'Devices'], cl.items.map((c) => [c.metadata.name, claimDevices(c, '')]), 'No claim.'));
    } catch (e) {
      body.replaceChildren(h('p', {class: 'error'}, e.message));
    }
  });
}

// A device with its capacity divided among the claims that use it: a bar per capacity
// (GPU memory, CPU cores), one coloured segment per claim.
function deviceCard(spec, dev, uses) {
  const attrs = dev.attributes || {};
  const attr = (k) => { const a = attrs[k]; return a ? Object.values(a)[0] : undefined; };
  const gpu = /gpu/i.test(spec.driver);
  const title = gpu ? `GPU ${dev.name}` : `NUMA node ${attr('numaNode') ?? dev.name}`;
  const bars = Object.entries(dev.capacity || {}).map(([cap, c]) => {
    const total = quantity(c.value !== undefined ? c.value : c);
    let used = 0;
    const segs = uses.filter((u) => u.capacity[cap] !== undefined).map((u, i) => {
      const v = quantity(u.capacity[cap]);
      used += v;
      return h('span', {style: {width: (100 * v / total) + '%', background: COLORS[i % COLORS.length]},
        title: `${u.claim}: ${u.capacity[cap]}`}, `${u.claim} ${u.capacity[cap]}`);
    });
    const free = total - used;
    const show = (v) => cap === 'memory' ? bytes(v) : String(+v.toFixed(3));
    return h('div', {}, h('div', {class: 'row'}, h('strong', {}, cap), h('span', {class: 'muted'}, `${show(used)} of ${show(total)} used, ${show(free)} free`)),
      h('div', {class: 'bar', role: 'img', 'aria-label': `${cap}: ` + (uses.map((u) => `${u.claim} ${u.capacity[cap] || 0}`).join(', ') || 'unused') + `, ${show(free)} free`}, segs));
  });
  return h('section', {class: 'card', 'aria-label': title}, h('h2', {}, title),
    h('p', {class: 'muted'}, [spec.driver, attr('productName'), attr('coreCPUs') ? 'CPUs ' + attr('coreCPUs') : null,
      dev.allowMultipleAllocations ? 'shared' : null].filter(Boolean).join(' · ')),
    bars, uses.length ? '' : h('p', {class: 'muted'}, 'No allocation.'));
}

function liveView(main) {
  const box = h('div', {});
  main.replaceChildren(h('h1', {}, 'Live plots'),
    h('p', {class: 'muted'}, 'One sample a second from /api/v1/stream; the last five minutes are kept in this page.'), box);
  let keys = '';
  const cards = [];
  const draw = () => {
    const now = [...state.live.keys()].sort().join(',');
    if (now !== keys) {
      keys = now;
      cards.length = 0;
      box.replaceChildren(...[...state.live.values()].map((s, i) => {
        const mk = (title, unit, f) => { const c = plotCard(title, unit, f); cards.push(c); return c; };
        return h('section', {'aria-label': `${s.name} v${s.version}`}, h('h2', {}, `${s.name} v${s.version}`), h('div', {class: 'plots'},
          mk('Throughput', 'requests/s', () => ({t: s.t, series: [{label: 'ok', values: s.throughput, color: COLORS[0]}, {label: 'errors', values: s.errors, color: COLORS[4]}]})),
          mk('Latency', 'ms', () => ({t: s.t, series: [{label: 'p50', values: s.p50, color: COLORS[2]}, {label: 'p99', values: s.p99, color: COLORS[1]}]})),
          mk('Queue depth', 'requests', () => ({t: s.t, series: [{label: 'queue', values: s.queue, color: COLORS[3]}]})),
          mk('Batch size', 'rows', () => ({t: s.t, series: [{label: 'mean batch', values: s.batch, color: COLORS[5]}]}))));
      }));
      if (!state.live.size) box.replaceChildren(h('p', {class: 'muted'}, 'Waiting for the first sample…'));
    }
    for (const c of cards) c.redraw();
  };
  listen(draw);
  draw();
}

// An example request for a model's inputs: zeros of each input's shape (a dynamic
// dimension becomes 1).
function exampleRequest(meta) {
  return {inputs: meta.inputs.map((i) => {
    const shape = i.shape.map((d) => (d < 0 ? 1 : d));
    const n = shape.reduce((a, b) => a * b, 1);
    const zero = i.datatype === 'BOOL' ? false : i.datatype === 'BYTES' ? '' : 0;
    return {name: i.name, shape, datatype: i.datatype, data: new Array(Math.min(n, 4096)).fill(zero)};
  })};
}

// The digits model: one input of 64 values, 8x8 (sklearn's digits, 0..16 per pixel).
const isDigits = (meta) => meta.inputs.length === 1 && meta.inputs[0].shape.slice(-2).join('x') === '8x8';

async function tryView(main) {
  const sel = h('select', {id: 'try-model'});
  const editor = h('textarea', {id: 'try-input', spellcheck: 'false'});
  const out = h('div', {id: 'try-output', 'aria-live': 'polite'});
  const extra = h('div', {});
  const run = h('button', {type: 'button', class: 'primary', id: 'try-run'}, 'Run');
  main.replaceChildren(h('h1', {}, 'Try it'),
    h('div', {class: 'row'}, h('label', {for: 'try-model'}, 'Model'), sel),
    extra, h('h2', {}, h('label', {for: 'try-input'}, 'Request (JSON)')), editor,
    h('div', {class: 'row'}, can('invoker') ? run : h('p', {class: 'muted'}, `Your role (${state.who.role}) may not run inference.`)),
    h('h2', {}, 'Response'), out);
  let meta = null;
  const names = new Set();
  try {
    const idx = await api('POST', '/v2/repository/index', {});
    for (const m of idx) if (m.state === 'READY' || !m.state) names.add(m.name);
  } catch (e) { /* no repository models */ }
  try { for (const d of (await get('/api/v1/deployments')).items) names.add(d.metadata.name); } catch (e) { /* no registry */ }
  try { for (const m of (await get('/api/v1/models?limit=200')).items) names.add(m.name); } catch (e) { /* no registry */ }
  for (const s of state.live.values()) names.add(s.name);
  if (!names.size) { out.replaceChildren(h('p', {class: 'muted'}, 'No model to try.')); return; }
  sel.replaceChildren(...[...names].sort().map((n) => h('option', {value: n}, n)));
  const wanted = new URLSearchParams(location.hash.split('?')[1] || '').get('model');
  if (wanted && names.has(wanted)) sel.value = wanted;
  const load = async () => {
    out.replaceChildren();
    extra.replaceChildren();
    try {
      meta = await get('/v2/models/' + enc(sel.value));
    } catch (e) { out.replaceChildren(h('p', {class: 'error'}, e.message)); return; }
    editor.value = JSON.stringify(exampleRequest(meta), null, 1);
    if (isDigits(meta)) extra.replaceChildren(digitPad(meta, editor, () => runIt()));
  };
  const runIt = async () => {
    if (!can('invoker')) return;
    let body;
    try { body = JSON.parse(editor.value); } catch (e) { out.replaceChildren(h('p', {class: 'error'}, 'The request is not valid JSON: ' + e.message)); return; }
    const t0 = performance.now();
    try {
      const res = await api('POST', `/v2/models/${enc(sel.value)}/infer`, body);
      const ms = performance.now() - t0;
      const kids = [h('p', {}, `Answered in ${ms.toFixed(1)} ms (round trip from this page), by version ${res.model_version}.`)];
      if (isDigits(meta)) {
        const o = res.outputs[0].data;
        const best = o.indexOf(Math.max(...o));
        kids.push(h('p', {}, 'Prediction: ', h('span', {class: 'prediction', id: 'prediction'}, best)));
      }
      kids.push(h('pre', {}, JSON.stringify(res.outputs, null, 1)));
      out.replaceChildren(...kids);
    } catch (e) { out.replaceChildren(h('p', {class: 'error'}, e.message)); }
  };
  sel.addEventListener('change', load);
  run.addEventListener('click', runIt);
  await load();
}

// An 8x8 drawing pad: drawing sets a cell to 16 (right button or Shift: 0); the request in
// the editor follows, and each stroke's end runs the model.
function digitPad(meta, editor, onStroke) {
  const px = new Array(64).fill(0);
  const canvas = h('canvas', {id: 'digit', width: 8, height: 8, role: 'img', tabindex: '0',
    'aria-label': 'drawing pad, 8 by 8 cells: draw with the mouse or a finger; arrow keys move, space toggles a cell'});
  const c = canvas.getContext('2d');
  let cursor = 27;
  const paint = () => {
    for (let i = 0; i < 64; i++) {
      const v = Math.round(255 * px[i] / 16);
      c.fillStyle = `rgb(${v},${v},${v})`;
      c.fillRect(i % 8, Math.floor(i / 8), 1, 1);
    }
    const req = exampleRequest(meta);
    req.inputs[0].data = px.slice();
    editor.value = JSON.stringify(req, null, 1);
  };
  let drawing = 0;
  const cell = (e) => {
    const r = canvas.getBoundingClientRect();
    const x = Math.floor(8 * (e.clientX - r.left) / r.width), y = Math.floor(8 * (e.clientY - r.top) / r.height);
    if (x >= 0 && x < 8 && y >= 0 && y < 8) { px[y * 8 + x] = drawing > 0 ? 16 : 0; paint(); }
  };
  canvas.addEventListener('pointerdown', (e) => { drawing = e.button === 2 || e.shiftKey ? -1 : 1; canvas.setPointerCapture(e.pointerId); cell(e); });
  canvas.addEventListener('pointermove', (e) => { if (drawing) cell(e); });
  canvas.addEventListener('pointerup', () => { drawing = 0; onStroke(); });
  canvas.addEventListener('contextmenu', (e) => e.preventDefault());
  canvas.addEventListener('keydown', (e) => {
    const moves = {ArrowLeft: -1, ArrowRight: 1, ArrowUp: -8, ArrowDown: 8};
    if (moves[e.key] !== undefined) { cursor = Math.max(0, Math.min(63, cursor + moves[e.key])); e.preventDefault(); }
    if (e.key === ' ') { px[cursor] = px[cursor] ? 0 : 16; paint(); onStroke(); e.preventDefault(); }
  });
  const clear = h('button', {type: 'button', id: 'digit-clear', onclick: () => { px.fill(0); paint(); }}, 'Clear');
  paint();
  return h('div', {}, h('h2', {}, 'Draw a digit'), h('div', {class: 'row'}, canvas, clear));
}

// --- routing ----------------------------------------------------------------------------------

const routes = [
  [/^#?\/?$/, overview],
  [/^#\/model\/([^/?]+)/, modelView],
  [/^#\/deployment\/([^/?]+)/, deploymentView],
  [/^#\/devices/, devicesView],
  [/^#\/live/, liveView],
  [/^#\/try/, tryView],
];

function route() {
  for (const t of state.timers) clearInterval(t);
  state.timers = [];
  state.listeners.clear();
  const main = document.getElementById('main');
  const hash = location.hash || '#/';
  for (const a of document.querySelectorAll('nav a')) {
    const here = a.getAttribute('href') === hash.split('?')[0];
    if (here) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  if (state.who && state.who.auth && state.who.role === 'none') { signInView(main); return; }
  for (const [re, view] of routes) {
    const m = re.exec(hash);
    if (m) { view(main, m[1] && decodeURIComponent(m[1])); main.focus({preventScroll: true}); return; }
  }
  main.replaceChildren(h('h1', {}, 'Not found'), h('p', {}, h('a', {href: '#/'}, 'Back to the overview')));
}

async function start() {
  await whoami();
  route();
  if (can('viewer')) streamLoop();
}

window.addEventListener('hashchange', route);
window.addEventListener('DOMContentLoaded', start);
