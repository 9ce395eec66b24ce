// Live: polls /api/v1/stages every second and keeps the last N minutes in
// the page. Rates (records/s, CPU ns and allocations per record, blocked
// share, late records/s) are differences between two consecutive polls, so
// they describe the last second; latency quantiles are hostd's histograms
// since the start of the run, as /api/v1/stages reports them.
import { api } from './api.js';
import { Chart } from './charts.js';
import { h, fmt, message } from './dom.js';

const KEEP_S = 3600; // the longest window offered
const WINDOWS = [1, 5, 15, 60];

let panel, tableBox, errBox, chartsBox, swapOut, swapStage, swapPlugin, swapVersion, swapParams;
let windowMin = 5;
let stageKey = '';
let prev = null;
let hist = null; // {t: [], per stage: {...arrays}}
let charts = {};
let lastStages = [];
let onStatus = () => {};

const METRICS = ['rate', 'cpu', 'allocs', 'occ', 'blocked', 'p50', 'p99', 'p999', 'late', 'lag99'];

export function initLive(el, statusCb) {
  panel = el;
  onStatus = statusCb;
  const sel = h('select', {
    id: 'live-window',
    'aria-label': 'Time window',
    onchange: (e) => {
      windowMin = Number(e.target.value);
      redraw();
    },
  }, WINDOWS.map((m) => h('option', { value: m, selected: m === windowMin }, `last ${m} min`)));
  errBox = h('div.live-error');
  tableBox = h('div.table-wrap', { id: 'live-table' });
  chartsBox = h('div.grid', { id: 'live-charts' });
  panel.append(
    h('div.toolbar', null, h('h2', null, 'Live'), sel, h('span.hint', null, 'polling /api/v1/stages every second')),
    errBox,
    tableBox,
    chartsBox,
    swapForm(),
  );
  poll();
  setInterval(poll, 1000);
}

function newHist(stages) {
  const o = { t: [] };
  for (const s of stages) {
    o[s.name] = {};
    for (const m of METRICS) o[s.name][m] = [];
  }
  return o;
}

function makeCharts(stages) {
  chartsBox.replaceChildren();
  charts = {};
  const box = (id, title) => {
    const c = h('div.chart', { id: 'chart-' + id, 'data-title': title });
    chartsBox.append(h('figure.card', null, h('figcaption', null, title), c));
    return c;
  };
  const per = (filter, label = (s) => s.name) =>
    stages.filter(filter).map((s) => ({ label: label(s), key: s.name }));
  const mk = (id, title, series, axes, yLabel) => {
    const c = new Chart(box(id, title), { series, axes, yLabel });
    c.keys = series;
    charts[id] = c;
  };
  mk('throughput', 'Throughput (records/s)', per(() => true), null, 'records/s');
  const sinks = stages.filter((s) => s.kind === 'sink');
  const lat = [];
  sinks.forEach((s) => {
    lat.push({ label: `${s.name} p50`, key: s.name, m: 'p50', color: '#29a36a' });
    lat.push({ label: `${s.name} p99`, key: s.name, m: 'p99', color: '#d4a017' });
    lat.push({ label: `${s.name} p99.9`, key: s.name, m: 'p999', color: '#e4572e' });
  });
  mk('latency', 'Sink latency from intended time (ms, since start)', lat, null, 'ms');
  mk('cpu', 'CPU ns per record (in callbacks)', per(() => true), null, 'ns/record');
  mk('allocs', 'Allocations per record', per(() => true), null, 'allocs/record');
  mk('ring', 'Output ring occupancy (% of capacity)', per((s) => s.ring), null, '%');
  mk('blocked', 'Blocked on a full ring (% of time)', per((s) => s.kind !== 'sink'), null, '% of time');
  const gens = stages.filter((s) => s.kind === 'generator');
  const late = [];
  gens.forEach((s) => {
    late.push({ label: `${s.name} late records/s`, key: s.name, m: 'late' });
    late.push({ label: `${s.name} lag p99 (ms)`, key: s.name, m: 'lag99', scale: 'ms', dash: [4, 3] });
  });
  mk('lateness', 'Generator lateness', late,
     [{ label: 'late records/s', scale: 'y' }, { label: 'lag p99 ms', scale: 'ms', side: 1 }]);
  const metricOf = { throughput: 'rate', cpu: 'cpu', allocs: 'allocs', ring: 'occ', blocked: 'blocked' };
  for (const [id, c] of Object.entries(charts)) c.keys.forEach((k) => (k.m = k.m || metricOf[id]));
}

async function poll() {
  let j;
  try {
    j = await api('/api/v1/stages');
  } catch (e) {
    message(errBox, 'error', e.status === 503 ? 'No pipeline is running: ' + e.message : e.message);
    onStatus(null, e);
    return;
  }
  errBox.replaceChildren();
  onStatus(j, null);
  const stages = j.stages || [];
  lastStages = stages;
  const key = stages.map((s) => s.name + '/' + s.kind).join(',');
  if (key !== stageKey || !hist) {
    stageKey = key;
    hist = newHist(stages);
    prev = null;
    makeCharts(stages);
    fillSwapStages(stages);
  }
  const t = j.time_unix;
  if (prev && t > prev.time_unix) append(prev, j);
  prev = j;
  renderTable(stages);
  redraw();
}

function recordsOf(s) {
  return s.kind === 'generator' ? s.records_out : s.records_in;
}

function append(a, b) {
  const dt = b.time_unix - a.time_unix;
  hist.t.push(b.time_unix);
  const byName = Object.fromEntries(a.stages.map((s) => [s.name, s]));
  for (const s of b.stages) {
    const p = byName[s.name];
    const H = hist[s.name];
    const dRec = p ? recordsOf(s) - recordsOf(p) : 0;
    const out = s.kind === 'sink' ? s.records_in : s.records_out;
    const pOut = p ? (s.kind === 'sink' ? p.records_in : p.records_out) : out;
    H.rate.push(p ? (out - pOut) / dt : null);
    // The callback CPU time is a sampled estimate (docs/data-path.md) that
    // can step back a little; a negative difference is not drawn.
    const dCpu = p ? s.callback_cpu_seconds - p.callback_cpu_seconds : -1;
    H.cpu.push(dRec > 0 && dCpu >= 0 ? (dCpu * 1e9) / dRec : null);
    H.allocs.push(p && dRec > 0 ? (s.allocations - p.allocations) / dRec : null);
    H.occ.push(s.ring ? (100 * s.ring.occupancy) / s.ring.capacity : null);
    H.blocked.push(p ? (100 * (s.blocked_seconds - p.blocked_seconds)) / dt : null);
    H.p50.push(s.latency ? s.latency.p50_seconds * 1e3 : null);
    H.p99.push(s.latency ? s.latency.p99_seconds * 1e3 : null);
    H.p999.push(s.latency ? s.latency.p999_seconds * 1e3 : null);
    H.late.push(p && s.generator ? (s.generator.late_records - p.generator.late_records) / dt : null);
    H.lag99.push(s.lag ? s.lag.p99_seconds * 1e3 : null);
  }
  // Keep at most KEEP_S seconds.
  const cut = hist.t.findIndex((x) => x >= b.time_unix - KEEP_S);
  if (cut > 0) {
    hist.t.splice(0, cut);
    for (const k of Object.keys(hist)) if (k !== 't') for (const m of METRICS) hist[k][m].splice(0, cut);
  }
}

function redraw() {
  if (!hist || !hist.t.length) return;
  const tEnd = hist.t[hist.t.length - 1];
  const i0 = Math.max(0, hist.t.findIndex((x) => x >= tEnd - windowMin * 60));
  const xs = hist.t.slice(i0);
  for (const c of Object.values(charts)) {
    c.setData([xs, ...c.keys.map((k) => hist[k.key][k.m].slice(i0))]);
  }
}

function renderTable(stages) {
  const last = (name, m) => {
    const a = hist && hist[name] ? hist[name][m] : [];
    return a.length ? a[a.length - 1] : null;
  };
  const rows = stages.map((s) => {
    const q = s.latency || s.service;
    return h('tr', null,
      h('th', { scope: 'row' }, s.name,
        s.parallelism > 1
          ? h('span.hint', { title: `parallel instances; records in: ${(s.instances || []).map((i) => i.records_in).join(' / ')}` },
            ` ×${s.parallelism}`)
          : null,
        s.callback_running_seconds >= 1
          ? h('span.stuck', { title: 'the plugin callback now running has been running this long (the watchdog logs it past run.callback_warn)' },
            ` in its callback for ${fmt(s.callback_running_seconds)} s`)
          : null),
      h('td', null, `${s.plugin} ${s.version}`),
      h('td', null, s.kind),
      h('td.num', null, fmt(last(s.name, 'rate'))),
      h('td.num', { title: s.latency ? 'latency from intended time' : 'service time per batch' },
        q ? `${fmt(q.p50_seconds * 1e3)} / ${fmt(q.p99_seconds * 1e3)} / ${fmt(q.p999_seconds * 1e3)}` : '–',
        q ? (s.latency ? '' : ' *') : ''),
      h('td.num', null, fmt(last(s.name, 'cpu'))),
      h('td.num', null, fmt(last(s.name, 'allocs'))),
      h('td.num', { title: 'heap the plugin holds now (allocated minus freed in its callbacks, init and fini)' },
        s.heap_live_bytes !== undefined ? fmt(s.heap_live_bytes / 1048576) : '–',
        s.heap_growing ? h('span.stuck', { title: 'grew at every 10 s step of the last minute, by more than 32 MiB (hostd logged a warning)' }, ' growing') : null),
      h('td.num', null, s.ring ? `${s.ring.occupancy}/${s.ring.capacity}` : '–'),
      h('td.num', null, fmt(s.blocked_seconds)),
      h('td.num', null, s.generator ? fmt(s.generator.late_records) : '–'),
      h('td.num', null, fmt(s.errors)),
    );
  });
  tableBox.replaceChildren(
    h('table.data', { id: 'stage-table' },
      h('thead', null, h('tr', null,
        ['stage', 'plugin', 'kind', 'records/s', 'p50 / p99 / p99.9 ms', 'CPU ns/rec', 'allocs/rec',
         'heap MiB', 'ring', 'blocked s', 'late', 'errors'].map((x) => h('th', { scope: 'col' }, x)))),
      h('tbody', null, rows)),
    h('p.hint', null, '* no sink latency: service time per batch inside the callback. Latency quantiles are since the start of the run.'),
  );
}

// --- Swap a stage's version --------------------------------------------------

function swapForm() {
  swapStage = h('select', { id: 'swap-stage', name: 'stage', required: true, onchange: prefillSwap });
  swapPlugin = h('input', { id: 'swap-plugin', name: 'plugin', required: true, size: 16 });
  swapVersion = h('input', { id: 'swap-version', name: 'version', placeholder: 'any', size: 8 });
  swapParams = h('input', { id: 'swap-params', name: 'params', placeholder: '{"key": "value"} (optional)', size: 24 });
  swapOut = h('pre.result', { id: 'swap-result', 'aria-live': 'polite' });
  const form = h('form.card.form', { id: 'swap-form', onsubmit: doSwap },
    h('h3', null, "Swap a stage's version"),
    h('p.hint', null, 'POST /api/v1/stages/{stage}/swap: loads the plugin from the configured plugin directories and hands the stage over under load.'),
    h('div.fields', null,
      h('label', null, 'stage ', swapStage),
      h('label', null, 'plugin ', swapPlugin),
      h('label', null, 'version ', swapVersion),
      h('label', null, 'params ', swapParams),
      h('button', { type: 'submit', id: 'swap-submit' }, 'Swap')),
    swapOut);
  return form;
}

function fillSwapStages(stages) {
  const cur = swapStage.value;
  swapStage.replaceChildren(...stages.filter((s) => s.kind === 'transform' || s.kind === 'sink' || true)
    .map((s) => h('option', { value: s.name, selected: s.name === cur }, s.name)));
  prefillSwap();
}

function prefillSwap() {
  const s = lastStages.find((x) => x.name === swapStage.value);
  if (s) {
    swapPlugin.value = s.plugin;
    swapVersion.placeholder = `now ${s.version}`;
  }
}

async function doSwap(ev) {
  ev.preventDefault();
  const body = { plugin: swapPlugin.value.trim() };
  if (swapVersion.value.trim()) body.version = swapVersion.value.trim();
  if (swapParams.value.trim()) {
    try {
      body.params = JSON.parse(swapParams.value);
    } catch (e) {
      swapOut.className = 'result error';
      swapOut.textContent = 'params is not JSON: ' + e.message;
      return;
    }
  }
  swapOut.className = 'result';
  swapOut.textContent = 'swapping…';
  try {
    const r = await api(`/api/v1/stages/${encodeURIComponent(swapStage.value)}/swap`, { method: 'POST', body });
    swapOut.className = 'result ok';
    swapOut.textContent = JSON.stringify(r, null, 2);
  } catch (e) {
    swapOut.className = 'result error';
    swapOut.textContent = e.body ? JSON.stringify(e.body, null, 2) : e.message;
  }
}

export function liveStages() {
  return lastStages;
}
