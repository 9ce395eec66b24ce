// The dashboard in a real browser: Debian's chromium driven by
// playwright-core (installed by the build into build/core/server/dashboard/
// node_modules). hostd runs gen_market -> xf_json_jansson -> tp_echo ->
// sink_null on loopback after a 2 s run into the same store, and the test
// checks, as a user would see it: the Live charts receive data (values
// change between two reads), a profile of the parse stage renders as a
// flame graph with xf_json_jansson's function names, and a difference of
// two profiles renders; the swap form swaps tp_echo 1.0.0 -> 2.0.0; an
// experiment started from the page shows its verdict (skipped, with a
// message, when the hostd has no experiments API); the Runs tab lists both
// runs and compares them. No console errors. Screenshots of every tab (and
// a phone-sized and a dark one) go to build/tests/integration/dashboard/.
// Then `hostd dashboard` over three stores of one run.id (two processes
// ended, one running) shows them together and follows the running one to
// its end.
//
// usage: node test_dashboard.mjs <build dir>
// Exits 77 (skipped) only when the dashboard was not built.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const build = resolve(process.argv[2] || 'build');
const dash = join(build, 'core', 'server', 'dashboard');
const status = existsSync(join(dash, 'status')) ? readFileSync(join(dash, 'status'), 'utf8').split('\n') : ['missing'];
if (status[0] !== 'built') {
  console.log(`SKIP: the dashboard was not built (${status[1] || status[0]}); see docs/dashboard.md`);
  process.exit(77);
}
const { chromium } = createRequire(join(dash, 'node_modules', 'noop.js'))('playwright-core');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
if (!existsSync(CHROMIUM)) {
  console.log(`FAIL: ${CHROMIUM} is missing (packaging/install-deps.sh installs Debian's chromium)`);
  process.exit(1);
}
const shots = join(build, 'tests', 'integration', 'dashboard');
mkdirSync(shots, { recursive: true });
const work = mkdtempSync(join(tmpdir(), 'obs-dashboard-'));

let passed = 0, failed = 0;
const ok = (cond, what, detail = '') => {
  if (cond) { passed++; console.log(`ok - ${what}`); }
  else { failed++; console.log(`FAIL - ${what}${detail ? ': ' + detail : ''}`); }
};

const hostd = join(build, 'core', 'hostd');
writeFileSync(join(work, 'p.yaml'), `pipeline: dashtest
plugin_dirs: [${join(build, 'plugins')}, ${join(build, 'tests', 'plugins')}]
run: {duration: 0}
load: [{shape: constant, rate: 20000}]
stages:
  - {name: ticks, plugin: gen_market}
  - {name: parse, plugin: xf_json_jansson}
  - {name: echo, plugin: tp_echo}
  - {name: sink, plugin: sink_null}
`);
const hostdArgs = ['--config', 'p.yaml', '--store', 'db', '--listen', '127.0.0.1:0'];

function waitExit(child) {
  return new Promise((res) => (child.exitCode !== null ? res(child.exitCode) : child.on('exit', (c) => res(c))));
}

// Starts hostd; resolves with the port from its "... port N ..." line.
function startHostd(extra = [], args = hostdArgs) {
  const child = spawn(hostd, [...args, ...extra], { cwd: work, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stdout.resume();
  return new Promise((res, rej) => {
    const timer = setTimeout(() => rej(new Error('hostd did not print its port in 10 s: ' + err)), 10000);
    child.stderr.on('data', (d) => {
      err += d;
      const m = /port (\d+)/.exec(err);
      if (m) { clearTimeout(timer); res({ child, port: Number(m[1]) }); }
    });
    child.on('exit', (c) => { clearTimeout(timer); rej(new Error(`hostd exited (${c}): ${err}`)); });
  });
}

let browser, live;
const t0 = Date.now();
try {
  // A finished run first, so the Runs tab has two to compare.
  const first = await startHostd(['--duration', '2s']);
  ok((await waitExit(first.child)) === 0, 'a 2 s run finishes');
  live = await startHostd();
  const url = `http://127.0.0.1:${live.port}`;
  const runId = (await (await fetch(url + '/api/v1/status')).json()).run_id;
  const expApi = (await fetch(url + '/api/v1/experiments')).status !== 404;

  const r = await fetch(url + '/', { headers: { Accept: 'text/html' } });
  ok(r.ok && r.headers.get('content-type').startsWith('text/html') && r.headers.get('etag'),
     'GET / with Accept: text/html is the page, with an ETag');
  const r304 = await fetch(url + '/assets/app.js', { headers: { 'If-None-Match': r.headers.get('etag') && (await fetch(url + '/assets/app.js')).headers.get('etag') } });
  ok(r304.status === 304, 'an asset revalidates with 304', String(r304.status));
  const rj = await fetch(url + '/');
  ok((await rj.json()).endpoints?.length > 5, 'GET / without Accept: text/html is still the endpoint list');

  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic',
      '--no-first-run', '--disable-component-update', '--disable-sync'],
  });
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 }, colorScheme: 'light' });
  const page = await ctx.newPage();
  const consoleErrors = [];
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => consoleErrors.push('page error: ' + e.message));
  page.setDefaultTimeout(15000);

  // --- Live ---------------------------------------------------------------------
  await page.goto(url + '/');
  await page.waitForSelector('#stage-table tbody tr');
  const readChart = () => page.evaluate(() => {
    const c = document.querySelector('#chart-throughput').chart;
    return { n: c.data[0].length, last: c.data.slice(1).map((s) => s[s.length - 1]) };
  });
  await page.waitForFunction(() => document.querySelector('#chart-throughput')?.chart?.data[0].length >= 2);
  const a = await readChart();
  await page.waitForTimeout(2200);
  const b = await readChart();
  ok(b.n > a.n && JSON.stringify(a.last) !== JSON.stringify(b.last), 'the live charts receive data',
     `${JSON.stringify(a)} then ${JSON.stringify(b)}`);
  const rate = b.last[1];
  // 20,000 records/s offered; only "records flow" is asserted, since a
  // loaded machine (sanitizer builds, parallel tests) may fall behind.
  ok(rate > 0, 'parse throughput is drawn', String(rate));
  const cpu = await page.evaluate(() => document.querySelector('#chart-cpu').chart.data[2].filter((v) => v > 0).length);
  ok(cpu > 0, 'CPU ns/record of parse is drawn');
  await page.screenshot({ path: join(shots, 'live.png'), fullPage: true });
  await page.screenshot({ path: join(shots, 'readme.png') }); // docs/dashboard.png comes from this one

  // Swap tp_echo 1.0.0 -> 2.0.0 with the form.
  await page.selectOption('#swap-stage', 'echo');
  await page.fill('#swap-plugin', 'tp_echo');
  await page.fill('#swap-version', '2.0.0');
  await page.click('#swap-submit');
  await page.waitForSelector('#swap-result.ok, #swap-result.error');
  const swapText = await page.textContent('#swap-result');
  ok(/"version": "2.0.0"/.test(swapText) && (await page.getAttribute('#swap-result', 'class')).includes('ok'),
     'the swap form swaps echo to tp_echo 2.0.0', swapText);
  await page.waitForFunction(() => /tp_echo 2\.0\.0/.test(document.querySelector('#stage-table').textContent));
  ok(true, 'the stage table shows tp_echo 2.0.0');
  await page.screenshot({ path: join(shots, 'live-swap.png'), fullPage: true });

  // --- Profile --------------------------------------------------------------------
  await page.click('#tab-profile');
  await page.selectOption('#profile-stage', 'parse');
  await page.fill('#profile-seconds', '2');
  await page.click('#profile-take');
  await page.waitForSelector('#flame svg g.frame', { timeout: 20000 });
  await page.waitForTimeout(400); // labels appear after the transition
  const names = await page.$$eval('#flame svg g.frame', (gs) => gs.map((g) => g.getAttribute('name')));
  ok(names.some((n) => /^xf_json_jansson:/.test(n)), 'the flame graph has xf_json_jansson functions',
     names.slice(0, 12).join(', '));
  ok(names.some((n) => n === 'json_loadb' || /jansson/.test(n)), 'and jansson frames under them');
  await page.fill('#flame-search', 'xf_jansson');
  await page.waitForTimeout(200);
  ok(/search: \d+ of \d+/.test(await page.textContent('#flame-details')), 'search reports the matching share');
  await page.screenshot({ path: join(shots, 'profile.png'), fullPage: true });
  await page.fill('#flame-search', '');
  await page.click('#profile-take');
  await page.waitForFunction(() => document.querySelectorAll('#profile-list option').length === 2, null, { timeout: 20000 });
  await page.click('#diff-show');
  await page.waitForFunction(() => /^Difference/.test(document.querySelector('#flame-title').textContent));
  await page.waitForSelector('#flame svg g.frame');
  ok(true, 'a differential flame graph of two profiles renders');
  await page.waitForTimeout(400);
  await page.screenshot({ path: join(shots, 'profile-diff.png'), fullPage: true });

  // --- Experiments -------------------------------------------------------------
  await page.click('#tab-experiments');
  if (!expApi) {
    await page.waitForSelector('#exp-unavailable .msg');
    ok(/no experiments API/.test(await page.textContent('#exp-unavailable')), 'without the API the tab says so');
    console.log('SKIP: /api/v1/experiments answers 404 in this hostd: no experiment verdict to check');
  } else {
    await page.selectOption('#exp-stage', 'echo');
    await page.fill('#exp-plugin', 'tp_echo');
    await page.fill('#exp-version', '1.0.0');
    await page.fill('#exp-max_seconds', '6');
    await page.click('#exp-start');
    await page.waitForSelector('#exp-result.ok, #exp-result.error');
    const res = await page.textContent('#exp-result');
    ok((await page.getAttribute('#exp-result', 'class')).includes('ok'), 'an experiment starts from the form', res);
    await page.waitForSelector('#exp-metrics tbody tr', { timeout: 25000 });
    await page.waitForSelector('#exp-interval svg circle.delta', { timeout: 10000 });
    const verdict = await page.textContent('.exp-head .verdict');
    ok(/^(SAME|FASTER|SLOWER|UNKNOWN|UNSTABLE)$/.test(verdict), 'the experiment shows a verdict', verdict);
    await page.waitForFunction(() => document.querySelector('#exp-convergence')?.chart?.data[0].length >= 1);
    ok(true, 'the convergence chart has points');
    // max_seconds is 6: wait for the final verdict.
    await page.waitForFunction(() => !/running/.test(document.querySelector('.exp-head')?.textContent || 'running'),
      null, { timeout: 20000 });
    const final = await page.textContent('.exp-head .verdict');
    ok(/^(SAME|FASTER|SLOWER|UNKNOWN|UNSTABLE)$/.test(final), 'the finished experiment shows its verdict', final);
  }
  await page.waitForTimeout(300);
  await page.screenshot({ path: join(shots, 'experiments.png'), fullPage: true });

  // --- Runs ------------------------------------------------------------------------
  await page.click('#tab-runs');
  await page.waitForSelector(`#runs-table tr[data-run="0:${runId}"]`);
  const nRuns = await page.$$eval('#runs-table tbody tr', (t) => t.length);
  ok(nRuns >= 2, `the Runs tab lists this run (${runId}) and the earlier one`);
  await page.click('#runs-compare-btn');
  await page.waitForSelector('#runs-report tbody tr');
  await page.waitForFunction(() => document.querySelector('#runs-chart')?.chart?.data[0].length > 0);
  ok(/records\/s/.test(await page.textContent('#runs-compare')), 'two runs compare: report table and series');
  await page.screenshot({ path: join(shots, 'runs.png'), fullPage: true });

  // --- One run.id over several processes: hostd dashboard over their stores ---------
  // Two processes that ended and one still running, each with its own store.
  const grp = ['--config', 'p.yaml', '--no-http', '--run-id', 'grp-x', '-q'];
  for (const st of ['g1', 'g2']) {
    const c = spawn(hostd, [...grp, '--store', st, '--duration', '1500ms'], { cwd: work, stdio: 'ignore' });
    ok((await waitExit(c)) === 0, `process with store ${st} ends`);
  }
  // And a run that a crashing plugin took down, in a fourth store.
  writeFileSync(join(work, 'crash.yaml'), `pipeline: crash
plugin_dirs: [${join(build, 'plugins')}, ${join(build, 'tests', 'plugins')}]
load: [{shape: constant, rate: 20000}]
stages:
  - {name: gen, plugin: gen_static}
  - {name: boom, plugin: tp_crash, params: {after: 5, how: segv}}
  - {name: sink, plugin: sink_null}
`);
  const crashed = spawn(hostd, ['--config', 'crash.yaml', '--store', 'gc', '--no-http', '-q'], { cwd: work, stdio: 'ignore' });
  ok((await waitExit(crashed)) !== 0, 'a run with a crashing plugin dies');
  // Runs until the test ends it (SIGINT: a clean end with its report), so
  // it is still running however slowly the page comes up.
  const third = spawn(hostd, [...grp, '--store', 'g3', '--duration', '120s'], { cwd: work, stdio: 'ignore' });
  await new Promise((res) => setTimeout(res, 1500));
  const board = await startHostd([], ['dashboard', '--store', 'g1', '--store', 'g2', '--store', 'g3', '--store', 'gc', '--listen', '127.0.0.1:0']);
  try {
    const bpage = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    bpage.on('console', (m) => m.type() === 'error' && consoleErrors.push(m.text()));
    await bpage.goto(`http://127.0.0.1:${board.port}/`);
    await bpage.waitForSelector('#groups-table tr[data-group="grp-x"]');
    ok(/no pipeline in this process/.test(await bpage.textContent('#status')) && !(await bpage.isHidden('#panel-runs')),
       'hostd dashboard opens on the Runs tab and says it runs no pipeline');
    ok((await bpage.$$eval('#runs-table tbody tr', (t) => t.length)) >= 4, 'the runs of all four stores are listed');
    await bpage.click('#runs-table tr[data-run="3:1"] a.bad');
    await bpage.waitForSelector('#runs-crash');
    ok(/stage 'boom', plugin tp_crash/.test(await bpage.textContent('#runs-crash')),
       'a crashed run is marked and shows the record hostd left');
    await bpage.click('#groups-table tr[data-group="grp-x"]');
    await bpage.waitForFunction(() => document.querySelectorAll('#group-processes tbody tr').length === 3);
    ok(/\(running\)/.test(await bpage.textContent('#group-view h3')), 'the group shows 3 processes, one still running');
    await bpage.waitForFunction(() => document.querySelector('#group-chart')?.chart?.data.length === 4 &&
      document.querySelector('#group-chart').chart.data[0].length > 2, null, { timeout: 10000 });
    ok(true, 'records/s of each process on one axis');
    // When the last process ends, the refreshing view gets its report and the end-to-end line.
    third.kill('SIGINT');
    ok((await waitExit(third)) === 0, 'the running process ends (SIGINT) with exit 0');
    await bpage.waitForFunction(() => /records generated/.test(document.querySelector('#group-e2e')?.textContent || ''),
      null, { timeout: 10000 });
    ok((await bpage.$$eval('#group-stages tbody tr', (t) => t.length)) === 12, 'every stage of the 3 processes in flow order');
    await bpage.screenshot({ path: join(shots, 'run-group.png'), fullPage: true });
    await bpage.close();
  } finally {
    if (third.exitCode === null) third.kill('SIGKILL');
    board.child.kill('SIGTERM');
    ok((await waitExit(board.child)) === 0, 'hostd dashboard exits 0 on SIGTERM');
  }

  // --- Phone-sized and dark ---------------------------------------------------------
  await page.setViewportSize({ width: 390, height: 844 });
  await page.click('#tab-live');
  await page.click('#theme');
  await page.waitForTimeout(1200);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  ok(overflow <= 1, 'no horizontal overflow of the page at 390 px', String(overflow));
  await page.screenshot({ path: join(shots, 'live-phone-dark.png'), fullPage: false });

  ok(consoleErrors.length === 0, 'no console errors', consoleErrors.join(' | '));
} catch (e) {
  ok(false, 'the dashboard test ran to its end', e.stack || String(e));
} finally {
  if (browser) await browser.close();
  if (live) {
    live.child.kill('SIGINT');
    const c = await waitExit(live.child);
    ok(c === 0, 'hostd drains and exits 0 on SIGINT', String(c));
  }
  rmSync(work, { recursive: true, force: true });
}
console.log(`screenshots: ${shots} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
