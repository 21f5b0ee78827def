// dashboard.mjs — the dashboard in Debian's chromium, driven by
// playwright-core over the DevTools protocol. Prints TAP. Run by
// t0900-dashboard.sh, which starts boxd (TCP listener, the test env's
// engine) and passes everything in the environment:
//   BASE_URL TOKEN SOCK ARTIFACTS CHROMIUM NODE_MODULES ENGINE APP_IMAGE HOSTILE_DIR APP_PREFIX
//
// Every console error, uncaught exception and CSP violation fails the test
// that was running (except the ones a step expects and names).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';

const env = process.env;
const { chromium } = await import(path.join(env.NODE_MODULES, 'playwright-core/index.mjs'));
const axeSource = fs.readFileSync(path.join(env.NODE_MODULES, 'axe-core/axe.min.js'), 'utf8');
const ENGINE = env.ENGINE === '1';
const base = env.BASE_URL;

// ---- TAP --------------------------------------------------------------------
let n = 0;
let failed = 0;
const PLAN = ENGINE ? 50 : 32;
// Deadlines, not delays: every wait below ends as soon as its condition
// holds; these only bound how long a loaded machine may take.
const WAIT_MS = 30000;
console.log(`1..${PLAN}`);
function ok(cond, desc, detail) {
  n++;
  if (cond) console.log(`ok ${n} - ${desc}`);
  else {
    failed++;
    console.log(`not ok ${n} - ${desc}`);
    if (detail !== undefined) diag(typeof detail === 'string' ? detail : JSON.stringify(detail));
  }
  return cond;
}
function diag(s) { for (const l of String(s).split('\n')) console.log(`# ${l}`); }

// The API over the unix socket (trusted), for what the test sets up.
function unixApi(method, p, body) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const r = http.request({ socketPath: env.SOCK, path: '/api/v1' + p, method,
      headers: data ? { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) } : {} }, (res) => {
      let text = '';
      res.on('data', (c) => { text += c; });
      res.on('end', () => resolve({ status: res.statusCode, body: text ? JSON.parse(text) : null }));
    });
    r.on('error', reject);
    if (data) r.write(data);
    r.end();
  });
}
async function waitTask(id, ms = 60000) {
  const until = Date.now() + ms;
  for (;;) {
    const t = (await unixApi('GET', `/tasks/${id}`)).body;
    if (['succeeded', 'failed', 'cancelled'].includes(t.state)) return t;
    if (Date.now() > until) return t;
    await new Promise((r) => setTimeout(r, 100));
  }
}
const hold = async (lock, seconds) =>
  (await unixApi('POST', '/tasks', { type: 'hold', args: { locks: [{ name: lock, mode: 'exclusive' }], seconds } })).body.taskId;

// ---- the browser --------------------------------------------------------------
const browser = await chromium.launch({
  executablePath: env.CHROMIUM,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
const page = await context.newPage();
page.setDefaultTimeout(WAIT_MS);

let problems = [];
let allowed = [];
page.on('console', (m) => {
  if (m.type() !== 'error' && m.type() !== 'warning') return;
  const text = m.text();
  if (m.type() === 'warning' && !/Content.Security.Policy|CSP/i.test(text)) return;
  if (allowed.some((re) => re.test(text))) return;
  problems.push(`console ${m.type()}: ${text}`);
});
page.on('pageerror', (e) => problems.push(`uncaught: ${e.message}`));
// Requests still open or failed, for the diagnosis when a step times out.
const inflight = new Map();
page.on('request', (r) => inflight.set(r, Date.now()));
page.on('requestfinished', (r) => inflight.delete(r));
const failedRequests = [];
page.on('requestfailed', (r) => { failedRequests.push(`${r.url()} ${r.failure()?.errorText}`); inflight.delete(r); });
// Before any of the page's scripts: collect CSP violations, and the times
// at which each task's row first showed each state.
await context.addInitScript(() => {
  window.__csp = [];
  document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
  window.__seen = {};
  new MutationObserver(() => {
    for (const tr of document.querySelectorAll('tr[data-task-id][data-state]')) {
      const k = `${tr.dataset.taskId}:${tr.dataset.state}`;
      if (!(k in window.__seen)) window.__seen[k] = Date.now();
    }
  }).observe(document, { subtree: true, childList: true, attributes: true });
});

// A step passes only without console errors, exceptions or CSP violations.
async function clean(desc) {
  const csp = await page.evaluate(() => window.__csp.splice(0)).catch(() => []);
  const all = [...problems, ...csp.map((c) => `CSP violation: ${c}`)];
  problems = [];
  return ok(all.length === 0, `${desc}: no console errors, exceptions or CSP violations`, all.join('\n'));
}
async function until(fn, ms = WAIT_MS) {
  const end = Date.now() + ms;
  for (;;) {
    try { if (await fn()) return true; } catch (e) { /* not yet */ }
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
}
async function axe(view) {
  await page.evaluate(axeSource);
  const v = await page.evaluate(async () => (await window.axe.run(document, {
    runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } })).violations
    .map((x) => `${x.id} (${x.impact}): ${x.nodes.slice(0, 3).map((nd) => nd.target.join(' ')).join(', ')}`));
  return ok(v.length === 0, `${view}: axe-core finds no WCAG 2.1 A/AA violation (every control labelled)`, v.join('\n'));
}
const shot = (name) => page.screenshot({ path: path.join(env.ARTIFACTS, `${name}.png`), fullPage: true });
// Show a view: set the #fragment, wait until the router has mounted it.
const go = async (hash) => {
  await page.evaluate((h) => { location.hash = h; }, hash);
  const route = decodeURIComponent(hash.replace(/^#\/?/, ''));
  await page.waitForFunction((r) => document.getElementById('main')?.dataset.route === r, route);
};
// Click something that starts a task; its id, from the notice line ("…:
// task N started"). Ids only grow, so an older notice is never taken for it.
const noticeTask = () => page.evaluate(() => Number(document.querySelector('.notice a[data-task-link]')?.dataset.taskLink || 0));
async function startTask(click) {
  const before = await noticeTask();
  await click();
  let id = 0;
  if (!await until(async () => (id = await noticeTask()) > before)) throw new Error(`no new task in the notice (still ${before})`);
  return id;
}
const rowState = (id) => page.locator(`tr[data-task-id="${id}"]`).first().getAttribute('data-state');

try {
  // ---- login ----------------------------------------------------------------
  const t0 = Date.now();
  await page.goto(base + '/');
  await page.getByLabel('API token').waitFor();
  ok(true, 'the page loads over TCP without a token and asks for one');
  const sizes = await page.evaluate(() => {
    const nav = performance.getEntriesByType('navigation')[0];
    const res = performance.getEntriesByType('resource').filter((r) => !r.name.includes('/api/'));
    return { transfer: nav.transferSize + res.reduce((s, r) => s + r.transferSize, 0), files: res.length + 1 };
  });
  diag(`first load: ${sizes.transfer} bytes transferred in ${sizes.files} requests, ${Date.now() - t0} ms`);
  ok(sizes.transfer > 0 && sizes.transfer <= 150 * 1024, `first load transfers at most 150 KB (${sizes.transfer} bytes)`);
  await axe('login');

  allowed = [/status of 401/];
  await page.getByLabel('API token').fill('boxd_000000000000000000000000000000000000000000000000');
  await page.getByRole('button', { name: 'Log in' }).click();
  ok(await until(() => page.getByRole('alert').filter({ hasText: 'This token is not valid.' }).isVisible()),
    'a wrong token is refused with a message');
  ok(await page.locator('nav').count() === 0, 'and nothing else is shown');
  allowed = [];
  problems = [];

  await page.getByLabel('API token').fill(env.TOKEN);
  await page.getByLabel('API token').press('Enter'); // the keyboard works
  ok(await until(() => page.locator('#live[data-mode="live"]').isVisible()), 'the right token logs in (Enter), and the page goes live');
  const stored = await page.evaluate((tok) => ({
    ls: JSON.stringify(localStorage), ss: JSON.stringify(sessionStorage), cookie: document.cookie,
    html: document.documentElement.outerHTML.includes(tok), input: document.querySelectorAll('input[type=password]').length,
  }), env.TOKEN);
  const cookies = await context.cookies();
  const sc = cookies.find((c) => c.name === 'boxd_session');
  ok(stored.ls === '{}' && stored.ss === '{}' && stored.cookie === '' && !stored.html && sc && sc.httpOnly &&
    sc.sameSite === 'Strict' && sc.value !== env.TOKEN,
  'the token is kept nowhere in the browser; the session cookie is HttpOnly and SameSite=Strict', { stored, sc });
  await clean('login');

  // ---- CSP is enforced, and violations are seen ---------------------------------
  await page.evaluate(() => {
    const s = document.createElement('script');
    s.textContent = 'window.__inline = 1';
    document.body.append(s);
  });
  await until(() => page.evaluate(() => window.__csp.length > 0), 5000);
  const inline = await page.evaluate(() => {
    document.querySelectorAll('script:not([src])').forEach((s) => s.remove());
    return { ran: window.__inline === 1, csp: window.__csp.splice(0) };
  });
  problems = problems.filter((p) => !/Content Security Policy/.test(p));
  ok(!inline.ran && inline.csp.length === 1, 'an injected inline script is blocked by the CSP, and the violation is reported', inline);

  // ---- overview ------------------------------------------------------------------
  await go('#/overview');
  await page.getByRole('heading', { name: 'System' }).waitFor();
  const st = (await unixApi('GET', '/status')).body;
  ok(await until(async () => {
    const kvText = await page.locator('dl.kv').textContent();
    return kvText.includes('sqlite') && kvText.includes(st.version) && /Uptime\d/.test(kvText) &&
      /Engine(\S.* \(API [0-9.]+\)|reachable; version not known: \S|unreachable)/.test(kvText);
  }), 'the overview shows version, store, engine (its API version, or why not), uptime',
  await page.locator('dl.kv').textContent().catch(() => ''));
  await shot('overview');
  await axe('overview');
  await clean('overview');

  // ---- tasks: a hold, its progress bar, a second hold waiting for it ------------
  await go('#/tasks');
  await page.getByLabel('Lock', { exact: true }).fill('web:demo');
  await page.getByLabel('Seconds').fill('30');
  const a = await startTask(() => page.getByRole('button', { name: 'Hold', exact: true }).click());
  const bar = page.locator(`tr[data-task-id="${a}"] progress`);
  const values = new Set();
  await until(async () => { values.add(Number(await bar.getAttribute('value'))); return values.size >= 3; }, 10000);
  ok(values.size >= 3, `task ${a}: its progress bar moves without a reload (${[...values].join(', ')})`);

  const b = await startTask(() => page.getByRole('button', { name: 'Hold', exact: true }).click());
  const row = page.locator(`tr[data-task-id="${b}"]`);
  const want = `Waiting for web:demo (held by task ${a}, hold)`;
  ok(await until(async () => (await row.locator('.message').textContent()).includes(want)),
    `task ${b} says "${want}"`, await row.locator('.message').textContent().catch(() => ''));
  ok(await row.locator(`.blocker a[href="#/tasks/${a}"]`).count() === 1, `and links to task ${a}`);
  await shot('tasks');
  await axe('tasks');

  // ---- locks ----------------------------------------------------------------------
  await go('#/locks');
  const holder = page.locator('tr[data-lock="web:demo"]');
  ok(await until(async () => (await holder.textContent()).includes(`task ${a}`)), `locks: web:demo is held by task ${a}`);
  const queued = page.locator('tr[data-ticket]').filter({ hasText: `task ${b}` });
  ok(await until(async () => await queued.locator(`.blocked-by a[href="#/tasks/${a}"]`).count() === 1),
    `the queue shows task ${b}, blocked by a link to task ${a}`);
  await shot('locks');
  await axe('locks');
  await clean('tasks and locks');

  // ---- stop from the page; task b gets the lock ----------------------------------
  await go('#/tasks');
  await page.getByRole('button', { name: `Stop task ${a}` }).click();
  ok(await until(async () => (await rowState(a)) === 'cancelled'), `Stop: task ${a} is cancelled`);
  ok(await until(async () => (await rowState(b)) === 'running'), `and task ${b} runs`);

  // ---- the live log of task b ----------------------------------------------------
  await page.getByRole('link', { name: `Log of task ${b}` }).click();
  const log = page.locator(`pre[data-log="${b}"]`);
  ok(await until(async () => (await log.textContent()).includes('locks taken')), `task ${b}: its live log shows its worker's lines`);
  await page.getByRole('button', { name: `Stop task ${b}` }).click();
  ok(await until(async () => (await log.textContent()).includes('stop requested')) &&
    await until(() => page.getByText('The task ended (cancelled)').isVisible()), 'the log follows to the end of the task');
  await axe('task');
  await clean('stop and log');

  // ---- state change → page: how long ---------------------------------------------
  await go('#/tasks');
  const delays = [];
  for (let i = 0; i < 5; i++) {
    const id = await hold(`web:lat${i}`, 1);
    const t = await waitTask(id, 20000);
    await until(() => page.evaluate((k) => k in window.__seen, `${id}:succeeded`), 5000);
    const seen = await page.evaluate((k) => window.__seen[k], `${id}:succeeded`);
    if (seen) delays.push(seen - Date.parse(t.finishedAt));
  }
  delays.sort((x, y) => x - y);
  diag(`task state change (finishedAt, written by the worker) to the page: ${delays.join(', ')} ms; median ${delays[2]} ms`);
  ok(delays.length === 5 && delays[2] <= 1000, 'a task state change reaches the page in at most 1 s (median of 5)', delays);

  // ---- the stream drops: the page polls ------------------------------------------
  // The server end of every connection of the page is reset (ss -K), and
  // the stream cannot come back while the route is blocked.
  allowed = [/ERR_FAILED|ERR_CONNECTION_RESET|ERR_EMPTY_RESPONSE|net::/];
  await page.route('**/api/v1/events**', (route) => route.abort());
  execFileSync('ss', ['-K', 'state', 'established', `( sport = :${new URL(base).port} )`], { stdio: 'ignore' });
  ok(await until(() => page.locator('#live[data-mode="polling"]').isVisible()), 'when the stream drops, the page says it polls');
  const p = await hold('web:poll', 0);
  ok(await until(async () => (await rowState(p)) === 'succeeded', 10000), `and still shows task ${p} end (by polling)`);
  await page.unroute('**/api/v1/events**');
  ok(await until(() => page.locator('#live[data-mode="live"]').isVisible(), 15000), 'the stream comes back');
  allowed = [];
  problems = [];

  // ---- the other views are labelled too -----------------------------------------
  for (const v of ['apps', 'volumes', 'backups']) {
    await go(`#/${v}`);
    await page.getByRole('heading', { level: 1 }).waitFor();
  }
  await go('#/apps');
  await axe('apps');
  await clean('polling and views');

  if (ENGINE) {
    // ---- services: restart sftp, health comes back -------------------------------
    const rb = await unixApi('POST', '/services/sftp/rebuild');
    const rbt = await waitTask(rb.body.taskId, 90000);
    if (rbt.state !== 'succeeded') diag(`sftp rebuild: ${JSON.stringify(rbt.error)}`);
    await go('#/services');
    const svc = page.locator('section[data-service="sftp"]');
    // The engine's health check and the feed's look at services (every
    // 5 s) are slow on a loaded machine: generous deadlines.
    ok(await until(async () => (await svc.locator('[data-health]').getAttribute('data-health')) === 'healthy', 90000),
      'services: sftp is healthy');
    const before = await svc.getAttribute('data-started');
    const rt = await startTask(() => page.getByRole('button', { name: 'Restart service sftp' }).click());
    const rtt = await waitTask(rt, 90000);
    ok(rtt.state === 'succeeded', `the restart task ${rt} succeeded`, rtt.error);
    ok(await until(async () => (await svc.getAttribute('data-started')) !== before &&
      (await svc.locator('[data-health]').getAttribute('data-health')) === 'healthy', 90000),
    'the page shows the restarted container, healthy again', { before, after: await svc.getAttribute('data-started') });
    await axe('services');
    await clean('services');

    // ---- hostile text is text: an app whose env and log hold markup -------------
    const id = `${env.APP_PREFIX}-xss`;
    await go('#/apps');
    await page.getByLabel('App id').fill(id);
    await page.getByLabel('Image').fill(env.APP_IMAGE);
    await page.getByLabel('Environment (KEY=value lines)').fill(
      'HTML=<script>window.__xss = 1</script>\nIMG=<img src=x onerror="window.__xss = 2">');
    const it = await waitTask(await startTask(() => page.getByRole('button', { name: 'Install' }).click()), 90000);
    ok(it.state === 'succeeded', `app ${id} installed from the page`, it.error);
    // A configure that fails with the markup in its error and its log.
    const cf = await unixApi('POST', `/apps/${id}/configure`, { dataDir: `${env.HOSTILE_DIR}/data` });
    const ct = await waitTask(cf.body.taskId, 60000);
    await go(`#/apps/${id}`);
    const envCell = page.locator('td.env-value');
    ok(await until(async () => (await envCell.allTextContents()).includes('<script>window.__xss = 1</script>')),
      'the env shows <script> and <img onerror> as text');
    await go(`#/tasks/${ct.id}`);
    const clog = page.locator(`pre[data-log="${ct.id}"]`);
    ok(await until(async () => (await clog.textContent()).includes('<img src=x onerror=window.__xss=3>')) &&
      (await page.locator('.error-text').first().textContent()).includes('<img src=x onerror=window.__xss=3>'),
    'the task\'s error and live log show the markup as text');
    const xss = await page.evaluate(() => ({ flag: window.__xss, imgs: document.querySelectorAll('img').length,
      scripts: [...document.scripts].filter((s) => !s.src).length }));
    ok(xss.flag === undefined && xss.imgs === 0 && xss.scripts === 0, 'nothing of it ran, no element was made of it', xss);
    await clean('hostile text');

    // ---- uninstall asks first: Cancel does nothing, the confirmation does it ----
    await go('#/apps');
    const tasksBefore = (await unixApi('GET', '/tasks?type=uninstall')).body;
    await page.getByRole('button', { name: `Uninstall ${id}` }).click();
    const dlg = page.getByRole('dialog');
    await dlg.waitFor();
    await dlg.getByRole('button', { name: 'Cancel' }).click();
    await dlg.waitFor({ state: 'detached' });
    const tasksAfter = (await unixApi('GET', '/tasks?type=uninstall')).body;
    ok(JSON.stringify(tasksAfter) === JSON.stringify(tasksBefore) && (await unixApi('GET', `/apps/${id}`)).status === 200,
      'Uninstall asks for a confirmation; Cancel leaves the app as it was', { tasksBefore, tasksAfter });
    await page.getByRole('button', { name: `Uninstall ${id}` }).click();
    const ut = await waitTask(await startTask(() => dlg.getByRole('button', { name: `Uninstall ${id}` }).click()), 90000);
    ok(ut.state === 'succeeded', `confirmed, the uninstall task ${ut.id} succeeded`, ut.error);
    ok(await until(async () => await page.locator(`tr[data-app="${id}"]`).count() === 0),
      `and app ${id} leaves the list without a reload`);
    await clean('uninstall');

    // ---- backups: a full backup from the page shows up in the list, live ------
    await go('#/backups');
    const bt = await waitTask(await startTask(() => page.getByRole('button', { name: 'Create a full backup' }).click()), 120000);
    ok(bt.state === 'succeeded', `the full backup task ${bt.id} started from the page succeeded`, bt.error);
    ok(await until(async () => await page.locator('tr[data-backup]').filter({ hasText: `task ${bt.id}` })
      .filter({ hasText: 'ok' }).count() > 0, 60000), 'and its backup appears in the list without a reload');
    await axe('backups');
    await clean('backups');
  }
} catch (e) {
  ok(false, `the run ended early: ${e.message}`);
  diag(`requests still open: ${[...inflight].filter(([r]) => !r.url().includes('/events'))
    .map(([r, t]) => `${r.method()} ${r.url()} (${Date.now() - t} ms)`).join(', ') || 'none'}`);
  if (failedRequests.length) diag(`failed requests: ${failedRequests.slice(-10).join(', ')}`);
  if (problems.length) diag(problems.join('\n'));
  await shot('failure').catch(() => {});
}
await browser.close();
if (n !== PLAN) diag(`planned ${PLAN} tests but ran ${n}`);
process.exit(failed === 0 && n === PLAN ? 0 : 1);
