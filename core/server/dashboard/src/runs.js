// Runs: the run history (GET /api/v1/runs). Pick two runs to compare them
// side by side: the per-stage figures of their end-of-run reports with the
// relative change, and one stored metric of both overlaid against seconds
// since each run's start (counters are shown as a rate per second).
import { api } from './api.js';
import { Chart } from './charts.js';
import { h, fmt, message } from './dom.js';

let listBox, cmpBox, metricSel, rateBox, chartBox, chart = null;
let runs = [];
const picked = [];
let pair = null; // [runA, runB] details

export function initRuns(panel) {
  listBox = h('div.table-wrap', { id: 'runs-list' });
  cmpBox = h('div', { id: 'runs-compare' });
  panel.append(
    h('div.toolbar', null, h('h2', null, 'Runs'),
      h('button', { type: 'button', id: 'runs-refresh', onclick: refreshRuns }, 'Refresh'),
      h('button', { type: 'button', id: 'runs-compare-btn', onclick: compare }, 'Compare selected'),
      h('span.hint', null, 'select two runs')),
    listBox, cmpBox);
}

export async function refreshRuns() {
  try {
    runs = (await api('/api/v1/runs')).runs || [];
  } catch (e) {
    message(listBox, 'error', e.status === 503 ? 'No run store: start hostd with store.path (or --store DIR) to keep run history.' : e.message);
    return;
  }
  if (!picked.length && runs.length >= 2) picked.push(runs[1].id, runs[0].id);
  const when = (ns) => (ns ? new Date(ns / 1e6).toLocaleString() : '–');
  listBox.replaceChildren(h('table.data', { id: 'runs-table' },
    h('thead', null, h('tr', null, ['', 'id', 'pipeline', 'status', 'started', 'snapshots', 'report'].map((x) => h('th', { scope: 'col' }, x)))),
    h('tbody', null, runs.map((r) => h('tr', { 'data-run': r.id },
      h('td', null, h('input', { type: 'checkbox', 'aria-label': `select run ${r.id}`, checked: picked.includes(r.id),
        onchange: (e) => pick(r.id, e.target.checked) })),
      h('td', null, r.id), h('td', null, r.pipeline), h('td', null, r.status),
      h('td', null, when(r.start_ns)), h('td.num', null, r.n_snapshots ?? '–'), h('td', null, r.has_report ? 'yes' : 'no'))))));
}

function pick(id, on) {
  const i = picked.indexOf(id);
  if (on && i < 0) picked.push(id);
  if (!on && i >= 0) picked.splice(i, 1);
  while (picked.length > 2) picked.shift();
  listBox.querySelectorAll('tbody tr').forEach((tr) => {
    tr.querySelector('input').checked = picked.includes(Number(tr.dataset.run));
  });
}

async function compare() {
  if (picked.length !== 2) {
    message(cmpBox, 'info', 'Select two runs to compare.');
    return;
  }
  const ids = picked.slice().sort((a, b) => a - b);
  try {
    const [a, b] = await Promise.all(ids.map((id) => api(`/api/v1/runs/${id}`)));
    const [ma, mb] = await Promise.all(ids.map((id) => api(`/api/v1/runs/${id}/metrics`)));
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
    h('caption', null, `measured: run ${a.id} ${measured(ra)}, run ${b.id} ${measured(rb)}`),
    h('thead', null, h('tr', null, h('th', { scope: 'col' }, ''), h('th', { scope: 'col' }, `run ${a.id}`),
      h('th', { scope: 'col' }, `run ${b.id}`), h('th', { scope: 'col' }, 'change'))),
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
    h('h3', null, `Run ${a.id} vs run ${b.id}`),
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
    [sa, sb] = await Promise.all([a, b].map((r) => api(`/api/v1/runs/${r.id}/series?metric=${encodeURIComponent(metric)}`)));
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
      series: [{ label: `run ${a.id}` }, { label: `run ${b.id}` }],
    });
  }
  chart.spec.yLabel = asRate ? `${metric.split('/').pop()} /s` : metric.split('/').pop();
  chart.setData([xs, ya, yb]);
}
