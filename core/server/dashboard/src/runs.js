// Runs: the run history (GET /api/v1/runs, of every store this hostd
// reads). Pick two runs to compare them side by side: the per-stage figures
// of their end-of-run reports with the relative change, and one stored
// metric of both overlaid against seconds since each run's start (counters
// are shown as a rate per second). Runs that share a run.id (one pipeline
// over several processes) are listed above and shown together (groups.js).
import { api } from './api.js';
import { Chart } from './charts.js';
import { h, fmt, message } from './dom.js';
import { initGroups, refreshGroups, showGroup } from './groups.js';

let listBox, cmpBox, metricSel, rateBox, chartBox, chart = null;
let runs = [];
let nStores = 1;
const picked = []; // keys "store:id"
let pair = null; // [runA, runB] details

const keyOf = (r) => `${r.store ?? 0}:${r.id}`;
const label = (r) => (nStores > 1 ? `run ${r.id} (store ${r.store ?? 0})` : `run ${r.id}`);

export function initRuns(panel) {
  listBox = h('div.table-wrap', { id: 'runs-list' });
  cmpBox = h('div', { id: 'runs-compare' });
  const groupList = h('div', { id: 'groups-list' }), groupView = h('div', { id: 'group-view' });
  initGroups(groupList, groupView, refreshRuns);
  panel.append(
    h('div.toolbar', null, h('h2', null, 'Runs'),
      h('button', { type: 'button', id: 'runs-refresh', onclick: refreshRuns }, 'Refresh'),
      h('button', { type: 'button', id: 'runs-compare-btn', onclick: compare }, 'Compare selected'),
      h('span.hint', null, 'select two runs')),
    groupList, groupView, listBox, cmpBox);
}

export async function refreshRuns() {
  let j;
  try {
    j = await api('/api/v1/runs');
  } catch (e) {
    message(listBox, 'error', e.status === 503 ? 'No run store: start hostd with store.path (or --store DIR) to keep run history.' : e.message);
    return;
  }
  runs = j.runs || [];
  nStores = (j.stores || []).length || 1;
  refreshGroups();
  if (!picked.length && runs.length >= 2) picked.push(keyOf(runs[1]), keyOf(runs[0]));
  const when = (ns) => (ns ? new Date(ns / 1e6).toLocaleString() : '–');
  const cols = ['', 'id', ...(nStores > 1 ? ['store'] : []), 'pipeline', 'run.id', 'status', 'started', 'snapshots', 'report'];
  const unreadable = (j.unreadable || []).map((u) => `${u.path}: ${u.error}`);
  listBox.replaceChildren(
    unreadable.length ? h('div.msg.error', { role: 'alert' }, 'Stores that could not be read: ' + unreadable.join('; ')) : '',
    h('table.data', { id: 'runs-table' },
      h('thead', null, h('tr', null, cols.map((x) => h('th', { scope: 'col' }, x)))),
      h('tbody', null, runs.map((r) => h('tr', { 'data-run': keyOf(r) },
        h('td', null, h('input', { type: 'checkbox', 'aria-label': `select ${label(r)}`, checked: picked.includes(keyOf(r)),
          onchange: (e) => pick(keyOf(r), e.target.checked) })),
        h('td', null, r.id), nStores > 1 ? h('td', { title: (j.stores || [])[r.store] }, r.store) : null,
        h('td', null, r.pipeline),
        h('td', null, r.run_id ? h('a', { href: '#runs', title: 'the processes of this run.id together',
          onclick: (e) => { e.preventDefault(); showGroup(r.run_id); } }, r.run_id) : '–'),
        h('td', null, r.status === 'crashed' ? h('a', { href: '#runs', class: 'bad', title: 'the record hostd left when a plugin crashed it',
          onclick: (e) => { e.preventDefault(); showCrash(r); } }, 'crashed') : r.status),
        h('td', null, when(r.start_ns)), h('td.num', null, r.n_snapshots ?? '–'), h('td', null, r.has_report ? 'yes' : 'no'))))));
}

// A run a crashing plugin took down: the record hostd's fatal-signal
// handler left (stage, plugin, build-id, signal, backtrace).
async function showCrash(r) {
  try {
    const run = await api(`/api/v1/runs/${r.id}?store=${r.store ?? 0}`);
    cmpBox.replaceChildren(h('h3', null, `${label(r)} (${run.pipeline}) crashed`),
      h('p.hint', null, 'The record hostd left (frames inside a plugin are file+offset, for addr2line):'),
      h('pre.crash', { id: 'runs-crash' }, run.crash || '(no record)'));
  } catch (e) {
    message(cmpBox, 'error', e.message);
  }
}

function pick(key, on) {
  const i = picked.indexOf(key);
  if (on && i < 0) picked.push(key);
  if (!on && i >= 0) picked.splice(i, 1);
  while (picked.length > 2) picked.shift();
  listBox.querySelectorAll('tbody tr').forEach((tr) => {
    tr.querySelector('input').checked = picked.includes(tr.dataset.run);
  });
}

async function compare() {
  if (picked.length !== 2) {
    message(cmpBox, 'info', 'Select two runs to compare.');
    return;
  }
  const refs = picked.map((k) => k.split(':').map(Number)).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  try {
    const [a, b] = await Promise.all(refs.map(([s, id]) => api(`/api/v1/runs/${id}?store=${s}`)));
    const [ma, mb] = await Promise.all(refs.map(([s, id]) => api(`/api/v1/runs/${id}/metrics?store=${s}`)));
    a.store = refs[0][0];
    b.store = refs[1][0];
    pair = [a, b];
    const names = [...new Set([...(ma.metrics || []), ...(mb.metrics || [])])].sort();
    renderCompare(a, b, names);
  } catch (e) {
    message(cmpBox, 'error', e.message);
  }
}

const REPORT_FIELDS = [
  ['rate_per_s', 'records/s'], ['mb_per_s', 'MB/s'], ['busy_pct', 'busy %'], ['cpu_ns_per_record', 'CPU ns/rec'],
  ['allocs_per_record', 'allocs/rec'], ['alloc_bytes_per_record', 'alloc B/rec'], ['blocked_s', 'blocked s'],
  ['cpu_s', 'CPU s'], ['errors', 'errors'], ['late_records', 'late'],
];

function change(a, b) {
  if (!Number.isFinite(a) || !Number.isFinite(b) || a === 0) return '';
  const d = b / a - 1;
  return `${d >= 0 ? '+' : ''}${(d * 100).toFixed(1)}%`;
}

function reportTable(a, b) {
  const ra = a.report, rb = b.report;
  if (!ra && !rb) return h('p.hint', null, 'Neither run has a report yet (running, or cut short).');
  const sa = Object.fromEntries(((ra || {}).stages || []).map((s) => [s.name, s]));
  const sb = Object.fromEntries(((rb || {}).stages || []).map((s) => [s.name, s]));
  const names = [...new Set([...Object.keys(sa), ...Object.keys(sb)])];
  const has = (v) => v !== null && v !== undefined;
  const rows = [];
  for (const name of names) {
    const s = sa[name] || {}, t = sb[name] || {};
    const what = (x) => (x.plugin ? `${x.plugin} ${x.version}` : '–');
    rows.push(h('tr.group', null, h('th', { colspan: 4, scope: 'rowgroup' },
      `${name}: ${what(s)}${what(s) !== what(t) ? ` → ${what(t)}` : ''}`)));
    for (const [k, label] of REPORT_FIELDS) {
      if (!has(s[k]) && !has(t[k])) continue;
      rows.push(h('tr', null, h('th', { scope: 'row' }, label), h('td.num', null, fmt(s[k])),
        h('td.num', null, fmt(t[k])), h('td.num', null, change(s[k], t[k]))));
    }
    if (s.latency_ms || t.latency_ms) {
      for (const q of ['p50', 'p99', 'p99_9']) {
        const va = s.latency_ms?.[q], vb = t.latency_ms?.[q];
        rows.push(h('tr', null, h('th', { scope: 'row' }, `latency ${q.replace('_', '.')} ms`), h('td.num', null, fmt(va)),
          h('td.num', null, fmt(vb)), h('td.num', null, change(va, vb))));
      }
    }
  }
  const measured = (r) => (r ? `${fmt(r.measured_s)} s` : '– (no report yet: running or cut short)');
  return h('table.data.report', { id: 'runs-report' },
    h('caption', null, `measured: ${label(a)} ${measured(ra)}, ${label(b)} ${measured(rb)}`),
    h('thead', null, h('tr', null, h('th', { scope: 'col' }, ''), h('th', { scope: 'col' }, label(a)),
      h('th', { scope: 'col' }, label(b)), h('th', { scope: 'col' }, 'change'))),
    h('tbody', null, rows));
}

// Gauges are drawn as they are; everything else the store keeps is a
// cumulative counter, drawn as its rate per second.
function isGauge(name) {
  return /ring_occupancy|ring_capacity|pipeline\/state$/.test(name);
}

function renderCompare(a, b, names) {
  const pref = names.find((n) => /\/records_out$/.test(n) && !/ticks|gen/.test(n)) || names.find((n) => /records_(in|out)$/.test(n)) || names[0];
  const cur = metricSel?.value && names.includes(metricSel.value) ? metricSel.value : pref;
  metricSel = h('select', { id: 'runs-metric', 'aria-label': 'Metric', onchange: drawSeries },
    names.map((n) => h('option', { value: n, selected: n === cur }, n)));
  rateBox = h('input', { type: 'checkbox', id: 'runs-rate', checked: true, onchange: drawSeries });
  chartBox = h('div.chart', { id: 'runs-chart' });
  cmpBox.replaceChildren(
    h('h3', null, `${label(a)} vs ${label(b)}`),
    h('div.grid2', null,
      h('div.card', null, h('h4', null, 'Report'), reportTable(a, b)),
      h('figure.card', null, h('figcaption', null, 'Series: ', metricSel, ' ', h('label', null, rateBox, ' counters as rate/s')), chartBox)));
  chart?.destroy();
  chart = null;
  drawSeries();
}

async function drawSeries() {
  const metric = metricSel.value;
  const [a, b] = pair;
  let sa, sb;
  try {
    [sa, sb] = await Promise.all([a, b].map((r) => api(`/api/v1/runs/${r.id}/series?store=${r.store}&metric=${encodeURIComponent(metric)}`)));
  } catch (e) {
    message(chartBox, 'error', e.message);
    return;
  }
  const asRate = rateBox.checked && !isGauge(metric);
  const rel = (pts, start) => {
    const t0 = start || (pts.length ? pts[0][0] : 0);
    const out = [];
    for (let i = 0; i < pts.length; i++) {
      const t = (pts[i][0] - t0) / 1e9;
      if (asRate) {
        if (i === 0) continue;
        const dt = (pts[i][0] - pts[i - 1][0]) / 1e9;
        out.push([t, dt > 0 ? (pts[i][1] - pts[i - 1][1]) / dt : null]);
      } else out.push([t, pts[i][1]]);
    }
    return out;
  };
  const pa = rel(sa.points || [], a.start_ns), pb = rel(sb.points || [], b.start_ns);
  // One x axis (seconds since start, rounded to 0.1 s) with both series on it.
  const xs = [...new Set([...pa, ...pb].map((p) => Math.round(p[0] * 10) / 10))].sort((x, y) => x - y);
  const idx = new Map(xs.map((x, i) => [x, i]));
  const ya = xs.map(() => null), yb = xs.map(() => null);
  pa.forEach(([t, v]) => (ya[idx.get(Math.round(t * 10) / 10)] = v));
  pb.forEach(([t, v]) => (yb[idx.get(Math.round(t * 10) / 10)] = v));
  if (!chart) {
    chart = new Chart(chartBox, {
      xTime: false, xLabel: 'seconds since the run started', height: 260,
      spanGaps: true,
      points: true, // a short run has few snapshots
      series: [{ label: label(a) }, { label: label(b) }],
    });
  }
  chart.spec.yLabel = asRate ? `${metric.split('/').pop()} /s` : metric.split('/').pop();
  chart.setData([xs, ya, yb]);
}
