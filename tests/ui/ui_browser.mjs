// ui_browser.mjs - the dashboard in Debian's chromium, headless, driven by playwright-core
// (see test_ui.sh, which starts the server and runs ui_setup.py first). Prints one PASS/FAIL
// line per check. Every page is checked for console errors, page errors, failed requests and
// HTTP errors, and for controls without an accessible name; each is screenshotted into SHOTS.
//
// Environment: URL, ADMIN (token), SETUP (ui_setup.py's JSON), SHOTS (a folder), CAPSTAN (the
// binary), ROOT (the source tree), PY (python).
import {chromium} from 'playwright-core';
import {spawn, spawnSync} from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const {URL, ADMIN, SETUP, SHOTS, CAPSTAN, ROOT, PY} = process.env;
const setup = JSON.parse(fs.readFileSync(SETUP, 'utf8'));
let failed = 0;
function check(name, ok, detail) {
  if (!ok) failed++;
  console.log((ok ? 'PASS ' : 'FAIL ') + name + (ok ? '' : ': ' + JSON.stringify(detail ?? '').slice(0, 600)));
}

// The flags the issue names: as root, no sandbox; nothing that talks to the network.
const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'capstan-ui-profile-'));
const ctx = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
    '--disable-sync'],
  viewport: {width: 1280, height: 800},
});
fs.mkdirSync(SHOTS, {recursive: true});

let closing = false;
// A page with its problems recorded; `problems.splice(0)` takes them.
async function newPage() {
  const page = await ctx.newPage();
  const problems = [];
  page.on('console', (m) => { if (m.type() === 'error') problems.push('console: ' + m.text()); });
  page.on('pageerror', (e) => problems.push('page error: ' + e.message));
  page.on('requestfailed', (r) => { if (!closing) problems.push(`failed: ${r.url()} ${r.failure() && r.failure().errorText}`); });
  page.on('response', (r) => { if (r.status() >= 400) problems.push(`HTTP ${r.status()} ${r.request().method()} ${r.url()}`); });
  return {page, problems};
}

// Every button, link, field and focusable canvas has a name a screen reader can say.
async function unlabelled(page) {
  return page.evaluate(() => [...document.querySelectorAll('button, a[href], select, input, textarea, [tabindex="0"]')]
    .filter((e) => e.offsetParent !== null || e.tagName === 'SELECT')
    .filter((e) => !(e.getAttribute('aria-label') || (e.labels && e.labels.length) || e.textContent.trim() || e.title))
    .map((e) => e.outerHTML.slice(0, 80)));
}

async function visit(p, name, hash, ready, shot = name) {
  await p.page.evaluate((h) => { location.hash = h; }, hash);
  try {
    await ready(p.page);
  } catch (e) {
    check(`${name}: loads`, false, e.message.split('\n')[0]);
  }
  await p.page.waitForTimeout(300);
  await p.page.screenshot({path: path.join(SHOTS, shot + '.png'), fullPage: true});
  check(`${name}: every control is labelled`, (await unlabelled(p.page)).length === 0, await unlabelled(p.page));
  const probs = p.problems.splice(0);
  check(`${name}: no console errors or failed requests`, probs.length === 0, probs);
}

const T = {timeout: 15000};
const admin = await newPage();
const page = admin.page;

// --- sign-in ------------------------------------------------------------------------------
await page.goto(URL + '/ui');
await page.waitForSelector('#token', T);
await page.screenshot({path: path.join(SHOTS, 'signin.png')});
check('sign-in: the page asks for a token (authentication on)', await page.isVisible('#token'));
await page.fill('#token', ADMIN);
await page.press('#token', 'Enter');
await page.waitForSelector('#who button', T);
check('sign-in: the token is kept for the tab (sessionStorage)',
  await page.evaluate(() => sessionStorage.getItem('capstan.token')) === ADMIN);
check('sign-in: the role is shown', (await page.textContent('#who')).includes('(admin)'));

// --- overview: a model pushed with the CLI appears without a reload ------------------------
await visit(admin, 'overview', '#/', (pg) => pg.waitForSelector('a[href="#/model/digits"]', T));
check('overview: deployments with their traffic split', await page.locator('.split').count() >= 3);
await page.evaluate(() => { window.notReloaded = true; });
const push = spawnSync(CAPSTAN, ['model', 'push', 'fresh', path.join(ROOT, 'models/digits.onnx')],
  {env: {...process.env, CAPSTAN_SERVER: URL, CAPSTAN_TOKEN: ADMIN}, encoding: 'utf8'});
check('capstan model push fresh', push.status === 0, push.stderr);
let appeared = true;
try { await page.waitForSelector('a[href="#/model/fresh"]', T); } catch (e) { appeared = false; }
check('overview: the pushed model appears without a reload', appeared &&
  await page.evaluate(() => window.notReloaded === true));
check('overview: no problems after the push', admin.problems.length === 0, admin.problems.splice(0));

// --- deployment and devices -----------------------------------------------------------------
await visit(admin, 'deployment', '#/deployment/g1', (pg) => pg.waitForFunction(
  () => document.querySelector('main').textContent.includes('gpu-0'), null, T));
check('deployment: instances with their device and state', await page.locator('main .chip.Ready').count() >= 1);
check('deployment: without a rollout in progress only Undo is offered',
  await page.locator('main button.promote, main button.abort').count() === 0 &&
  await page.locator('main button.undo').count() === 1);

// --- deployment c1: Promote, Abort and Undo, each confirmed, checked through the API ----------
const AUTH = {Authorization: 'Bearer ' + ADMIN};
const apiJson = async (method, p, body) => (await fetch(URL + p, {method, headers: {...AUTH, 'Content-Type': 'application/json'},
  body: body === undefined ? undefined : JSON.stringify(body)})).json();
const c1 = async () => (await apiJson('GET', '/api/v1/deployments/c1')).status.rollout || {};
const toastSays = (text) => page.waitForFunction((t) => document.getElementById('toast').textContent.includes(t), text, T);
const inProgress = (ro) => ro.phase === 'Progressing' || ro.phase === 'Paused';
await visit(admin, 'deployment c1', '#/deployment/c1', (pg) => pg.waitForSelector('main button.undo', T), 'deployment-c1');
// Undo with nothing to go back to: the API's 409 and its text in the toast, nothing else wrong.
await page.click('main button.undo');
await page.click('#confirm-ok');
let shown = true;
try { await toastSays('has served no other version to go back to'); } catch (e) { shown = false; }
check('c1: a refused Undo shows the API\'s error text', shown, await page.textContent('#toast'));
await page.waitForTimeout(300);
const refused = admin.problems.splice(0).filter((m) => !/^console: Failed to load resource: .* 409/.test(m));
check('c1: the refusal is the one 409 of POST .../rollout/undo',
  JSON.stringify(refused) === JSON.stringify([`HTTP 409 POST ${URL}/api/v1/deployments/c1/rollout/undo`]), refused);

const started = await apiJson('POST', '/api/v1/deployments/c1/rollout/start', {to: 2});
check('c1: a rollout to v2 started through the API', (started.status || {}).rollout &&
  started.status.rollout.canary === '2', started);
// Promote once the canary serves its 60% (promoting while the old version still has the larger
// share restarts the rollout: a runtime bug, not the page's).
const split = async () => (await apiJson('GET', '/api/v1/deployments/c1')).status.traffic.map((t) => `${t.version}:${t.percent}`).sort().join();
let atSixty = false;
for (let i = 0; i < 100 && !atSixty; i++) { atSixty = (await split()) === '1:40,2:60'; if (!atSixty) await page.waitForTimeout(100); }
check('c1: the canary serves its 60%', atSixty, await split());
let offered = true;
try { await page.waitForSelector('main button.promote', T); } catch (e) { offered = false; }
check('c1: Promote and Abort appear while the rollout is in progress', offered &&
  await page.locator('main button.abort').count() === 1, await page.textContent('main'));
await page.screenshot({path: path.join(SHOTS, 'deployment-c1-rollout.png'), fullPage: true});
await page.click('main button.promote');
await page.waitForSelector('dialog[open]', T);
check('c1: Promote asks first, naming the canary', (await page.textContent('#confirm-text')).includes('Promote v2 of c1'));
await page.click('dialog button[value=cancel]');
await page.waitForTimeout(300);
let ro = await c1();
check('c1: cancelling Promote changes nothing', inProgress(ro) && ro.canary === '2', ro);

// Promote with the keyboard alone: Tab from the top of the page, Enter, Enter on Confirm.
await page.evaluate(() => document.getElementById('main').focus());
let tabs = 0;
while (tabs < 40 && !await page.evaluate(() => document.activeElement.classList.contains('promote'))) {
  await page.keyboard.press('Tab');
  tabs++;
}
check('c1: Promote is reached with Tab', tabs < 40, tabs);
await page.keyboard.press('Enter');
await page.waitForSelector('dialog[open]', T);
check('c1: the confirmation has the focus on Confirm', await page.evaluate(() => document.activeElement.id) === 'confirm-ok');
await page.keyboard.press('Enter');
shown = true;
try { await toastSays('c1: canary promoted'); } catch (e) { shown = false; }
ro = await c1();
check('c1: confirming Promote ends the rollout with v2 stable (API)', shown && ro.phase === 'Succeeded' && ro.stable === '2', ro);
let gone = true;
try { await page.waitForSelector('main button.promote', {state: 'detached', ...T}); } catch (e) { gone = false; }
check('c1: the page follows: no Promote after the promotion', gone && await page.locator('main button.abort').count() === 0);
check('c1: the focus stays on the rollout buttons', await page.evaluate(() => document.activeElement.classList.contains('undo')));

// Undo after the promotion: a rollout back to v1 starts.
await page.click('main button.undo');
await page.click('#confirm-ok');
shown = true;
try { await toastSays('c1: rolling back'); } catch (e) { shown = false; }
ro = await c1();
check('c1: confirming Undo rolls out v1 again (API)', shown && inProgress(ro) && ro.canary === '1' && ro.stable === '2', ro);
offered = true;
try { await page.waitForSelector('main button.abort', T); } catch (e) { offered = false; }
check('c1: Abort is offered for the rollout Undo started', offered);
check('c1: no problems after Promote and Undo', admin.problems.length === 0, admin.problems.splice(0));

// A viewer sees the rollout in progress but none of the buttons.
const viewer = await newPage();
await viewer.page.goto(URL + '/ui');
await viewer.page.waitForSelector('#token', T);
await viewer.page.fill('#token', setup.viewer);
await viewer.page.press('#token', 'Enter');
await viewer.page.waitForSelector('#who button', T);
check('viewer: signed in as viewer', (await viewer.page.textContent('#who')).includes('(viewer)'));
await visit(viewer, 'viewer deployment c1', '#/deployment/c1', (pg) => pg.waitForFunction(
  () => document.querySelector('main').textContent.includes('Canary weight'), null, T), 'viewer-deployment-c1');
check('viewer: no Promote, Abort or Undo during a rollout', await viewer.page.locator('main button').count() === 0);

// Abort: back to v2 at once.
await page.click('main button.abort');
await page.click('#confirm-ok');
shown = true;
try { await toastSays('c1: rollout aborted'); } catch (e) { shown = false; }
ro = await c1();
check('c1: confirming Abort rolls the canary back (API)', shown && ro.phase === 'Failed' && ro.stable === '2' &&
  (ro.reason || '').includes('aborted by'), ro);
gone = true;
try { await page.waitForSelector('main button.abort', {state: 'detached', ...T}); } catch (e) { gone = false; }
check('c1: the page follows: no Abort after the abort', gone);
check('c1: no problems after Abort', admin.problems.length === 0, admin.problems.splice(0));

await visit(admin, 'devices', '#/devices', (pg) => pg.waitForFunction(
  () => document.querySelectorAll('.bar span').length >= 2 && document.querySelector('main').textContent.includes('cannot be placed'), null, T));
const segs = await page.evaluate(() => [...document.querySelectorAll('section[aria-label="GPU gpu-0"] .bar span')]
  .map((s) => [s.textContent, Math.round(100 * s.getBoundingClientRect().width / s.parentElement.getBoundingClientRect().width)]));
check('devices: the shared GPU\'s memory split among instances (8Gi 50%, 6Gi 37%)',
  JSON.stringify(segs.map((s) => s[1]).sort()) === JSON.stringify([37, 50]) &&
  segs.some((s) => s[0].startsWith('g1-') && s[0].includes('8Gi')), segs);
check('devices: the pending claim with its reason', (await page.textContent('main')).includes('deployment g3'));
check('devices: the NUMA node', (await page.textContent('main')).includes('NUMA node 0'));

// --- live plots move under a bounded load -------------------------------------------------
await visit(admin, 'live', '#/live', (pg) => pg.waitForSelector('section[aria-label="g1 v1"] canvas', T));
const throughput = () => page.evaluate(() => {
  const c = document.querySelector('section[aria-label="g1 v1"] canvas');
  return {label: c.getAttribute('aria-label'), png: c.toDataURL()};
});
const before = await throughput();
const load = spawn(PY, [path.join(ROOT, 'tests/ui/load.py'), URL, ADMIN, 'g1', '8', ROOT], {stdio: 'ignore'});
const loadDone = new Promise((r) => load.on('exit', r));
let moved = null;
for (let i = 0; i < 40 && !moved; i++) {
  await page.waitForTimeout(250);
  const now = await throughput();
  const ok = /^ok: ([0-9.]+)/.exec(now.label);
  if (ok && parseFloat(ok[1]) > 1 && now.png !== before.png) moved = now.label;
}
check('live: the throughput plot moves while the load runs', moved !== null, before.label);
await page.waitForTimeout(1500);
await page.screenshot({path: path.join(SHOTS, 'live.png'), fullPage: true});
const lat = await page.evaluate(() => document.querySelectorAll('section[aria-label="g1 v1"] canvas')[1].getAttribute('aria-label'));
check('live: latency p50/p99 plotted', /p50: [0-9.]+ ms, p99: [0-9.]+ ms/.test(lat), lat);
await loadDone;
check('live: no problems', admin.problems.length === 0, admin.problems.splice(0));

// --- try it: draw a digit -----------------------------------------------------------------
await visit(admin, 'try', '#/try?model=digits', (pg) => pg.waitForSelector('#digit', T));
const box = await page.locator('#digit').boundingBox();
const cellW = box.width / 8;
for (let y = 0; y < 8; y++) {
  for (let x = 0; x < 8; x++) {
    if (!setup.pixels[y * 8 + x]) continue;
    let end = x;
    while (end + 1 < 8 && setup.pixels[y * 8 + end + 1]) end++;
    const cy = box.y + (y + 0.5) * cellW;
    await page.mouse.move(box.x + (x + 0.5) * cellW, cy);
    await page.mouse.down();
    await page.mouse.move(box.x + (end + 0.5) * cellW, cy, {steps: 4 * (end - x + 1)});
    await page.mouse.up();
    x = end;
  }
}
const sent = await page.evaluate(() => JSON.parse(document.getElementById('try-input').value).inputs[0].data);
check('try: the drawing is the request', JSON.stringify(sent) === JSON.stringify(setup.pixels), sent);
let predicted = null;
try {
  await page.waitForFunction((want) => {
    const p = document.getElementById('prediction');
    return p && p.textContent === String(want);
  }, setup.label, T);
  predicted = setup.label;
} catch (e) { predicted = await page.textContent('#try-output'); }
check(`try: the drawn ${setup.label} is classified as ${setup.label}`, predicted === setup.label, predicted);
check('try: the latency is shown', /Answered in [0-9.]+ ms/.test(await page.textContent('#try-output')));
await page.screenshot({path: path.join(SHOTS, 'try.png'), fullPage: true});
check('try: no problems', admin.problems.length === 0, admin.problems.splice(0));

// --- model: versions and the audit trail; move an alias and archive a version of `spare`,
// each confirmed (not digits: the deployments follow its prod) ------------------------------
await visit(admin, 'model', '#/model/digits', (pg) => pg.waitForSelector('button.archive', T));
check('model: versions with digest and IO schema', (await page.textContent('main')).includes('image: float32[batch,1,8,8]'));
check('model: the audit trail', (await page.textContent('main')).includes('alias.moved'));
{
  const text = await page.textContent('main');
  check('model: a version shows its description and lineage (run, parent)',
    text.includes('retrained on more digits') && text.includes('run r7') && text.includes('from 1'));
}
await visit(admin, 'model spare', '#/model/spare', (pg) => pg.waitForSelector('#move-prod', T), 'model-spare');
await page.selectOption('#move-prod', '2');
await page.click('button.move');
await page.waitForSelector('dialog[open]', T);
await page.click('dialog button[value=cancel]');
const aliasNow = async () => (await (await fetch(URL + '/api/v1/models/spare', {headers: {Authorization: 'Bearer ' + ADMIN}})).json()).aliases.prod;
check('model: cancelling the confirmation changes nothing', await aliasNow() === 1);
await page.selectOption('#move-prod', '2');
await page.click('button.move');
await page.click('#confirm-ok');
await page.waitForFunction(() => document.getElementById('toast').textContent.includes('prod now points to v2'), null, T);
check('model: confirming moves the alias', await aliasNow() === 2);
await page.waitForSelector('button[aria-label="archive v1"]', T);
await page.click('button[aria-label="archive v1"]');
await page.click('#confirm-ok');
await page.waitForSelector('.chip.archived', T);
check('model: confirming archives the version', await page.locator('button[aria-label="archive v1"]').count() === 0);
check('model: no problems after the changes', admin.problems.length === 0, admin.problems.splice(0));

// --- a narrow window ------------------------------------------------------------------------
await page.setViewportSize({width: 390, height: 800});
await visit(admin, 'overview (narrow)', '#/', (pg) => pg.waitForSelector('a[href="#/model/digits"]', T), 'overview-narrow');
check('overview (narrow): nothing wider than the window', await page.evaluate(
  () => document.documentElement.scrollWidth <= window.innerWidth), await page.evaluate(() => document.documentElement.scrollWidth));
await visit(admin, 'devices (narrow)', '#/devices', (pg) => pg.waitForSelector('.bar span', T), 'devices-narrow');
check('devices (narrow): nothing wider than the window', await page.evaluate(
  () => document.documentElement.scrollWidth <= window.innerWidth));
await page.setViewportSize({width: 1280, height: 800});

// --- keyboard: the skip link, then the navigation, are reached with Tab ---------------------
await page.evaluate(() => document.activeElement && document.activeElement.blur());
await page.keyboard.press('Tab');
const first = await page.evaluate(() => document.activeElement.textContent);
await page.keyboard.press('Tab');
await page.keyboard.press('Tab');
const third = await page.evaluate(() => document.activeElement.textContent);
check('keyboard: Tab reaches the skip link and the pages', first === 'Skip to content' && third === 'Overview', [first, third]);

// --- a viewer (signed in above) sees no mutating button -------------------------------------
const mutating = () => viewer.page.locator('button.move, button.archive, #try-run, select[id^=move-]').count();
await visit(viewer, 'viewer overview', '#/', (pg) => pg.waitForSelector('a[href="#/model/digits"]', T), 'viewer-overview');
await visit(viewer, 'viewer model', '#/model/digits', (pg) => pg.waitForFunction(
  () => document.querySelector('main').textContent.includes('Audit trail'), null, T), 'viewer-model');
check('viewer: no alias move or archive on the model page', await mutating() === 0);
await visit(viewer, 'viewer deployment', '#/deployment/g1', (pg) => pg.waitForSelector('main .chip.Ready', T), 'viewer-deployment');
check('viewer: no button on the deployment page', await viewer.page.locator('main button').count() === 0);
await visit(viewer, 'viewer try', '#/try?model=digits', (pg) => pg.waitForSelector('#digit', T), 'viewer-try');
check('viewer: no Run button', await mutating() === 0);
await visit(viewer, 'viewer devices', '#/devices', (pg) => pg.waitForSelector('.bar span', T), 'viewer-devices');
await visit(viewer, 'viewer live', '#/live', (pg) => pg.waitForSelector('canvas', T), 'viewer-live');

closing = true;
await ctx.close();
fs.rmSync(profile, {recursive: true, force: true});
process.exit(failed ? 1 : 0);
