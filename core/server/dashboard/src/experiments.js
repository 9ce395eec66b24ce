// Experiments: A/B experiments of the running pipeline (GET/POST
// /api/v1/experiments, docs/http-api.md). For the one selected: each
// metric's relative difference B/A-1 with its confidence interval drawn as
// an interval against the ±threshold band, the verdicts, and how the
// estimate of one metric converged over time (uPlot, CI as a band). A hostd
// without the experiments API gets a message instead of errors.
import { select } from 'd3-selection';
import { scaleLinear, scaleBand } from 'd3-scale';
import { axisBottom } from 'd3-axis';
import { api, hasEndpoint } from './api.js';
import { Chart } from './charts.js';
import { h, fmt, pct, message } from './dom.js';
import { liveStages } from './live.js';

let listBox, detailBox, formOut, noApi, metricSel, convChart = null, convBox;
let selected = null;
let available = null; // null: unknown yet
let timer = 0;
let form;

export function initExperiments(panel) {
  noApi = h('div', { id: 'exp-unavailable' });
  listBox = h('div.table-wrap', { id: 'exp-list' });
  detailBox = h('div', { id: 'exp-detail' });
  panel.append(h('div.toolbar', null, h('h2', null, 'Experiments')), noApi, startForm(), listBox, detailBox);
}

export async function showExperiments() {
  refreshStageOptions();
  if (available === null) available = await hasEndpoint('/api/v1/experiments');
  if (!available) return unavailable();
  await refresh();
  clearInterval(timer);
  timer = setInterval(refresh, 1000);
}

export function hideExperiments() {
  clearInterval(timer);
}

function unavailable() {
  clearInterval(timer);
  message(noApi, 'info',
    'This hostd has no experiments API (GET /api/v1/experiments answered 404). ' +
      'A/B experiments need a hostd built with them; everything else on this page works without.');
  form.querySelectorAll('input,select,button').forEach((e) => (e.disabled = true));
  listBox.replaceChildren();
  detailBox.replaceChildren();
}

async function refresh() {
  let list;
  try {
    list = await api('/api/v1/experiments');
  } catch (e) {
    if (e.status === 404) {
      available = false;
      return unavailable();
    }
    message(listBox, 'error', e.message);
    return;
  }
  if (list && !Array.isArray(list)) list = list.experiments || [];
  renderList(list);
  if (selected === null && list.length) selected = list[list.length - 1].id;
  if (selected !== null) {
    try {
      renderDetail(await api(`/api/v1/experiments/${selected}`));
    } catch (e) {
      message(detailBox, 'error', e.message);
    }
  }
}

function verdictBadge(v) {
  return h('span.verdict.v-' + String(v || 'unknown').toLowerCase(), null, v || '–');
}

function renderList(list) {
  if (!list.length) {
    listBox.replaceChildren(h('p.hint', null, 'No experiment yet in this run: start one above.'));
    return;
  }
  listBox.replaceChildren(h('table.data.clickable', { id: 'exp-table' },
    h('thead', null, h('tr', null, ['id', 'stage', 'mode', 'state', 'verdict'].map((x) => h('th', { scope: 'col' }, x)))),
    h('tbody', null, list.slice().reverse().map((x) => h('tr', {
      class: x.id === selected ? 'selected' : null,
      tabindex: 0,
      onclick: () => { selected = x.id; refresh(); },
      onkeydown: (e) => { if (e.key === 'Enter') { selected = x.id; refresh(); } },
    }, h('td', null, x.id), h('td', null, x.stage), h('td', null, x.mode), h('td', null, x.state), h('td', null, verdictBadge(x.verdict)))))));
}

function renderDetail(e) {
  const threshold = e.threshold ?? Number(form.threshold.value) ?? 0.01;
  const head = h('div.exp-head', null,
    h('h3', null, `Experiment ${e.id}: stage ${e.stage}, ${e.mode}`),
    h('div', null, 'A ', h('code', null, `${e.a?.plugin} ${e.a?.version}`), ' vs B ', h('code', null, `${e.b?.plugin} ${e.b?.version}`),
      ` · ${e.state} · ${fmt(e.elapsed_s)} s · ${e.samples ?? '–'} samples · overall `, verdictBadge(e.verdict), ' ',
      e.state === 'running' ? h('button', { type: 'button', id: 'exp-stop', onclick: () => stop(e.id) }, 'Stop') : null));
  const metrics = e.metrics || [];
  const table = h('table.data', { id: 'exp-metrics' },
    h('thead', null, h('tr', null, ['metric', 'A', 'B', 'Δ (B/A−1)', 'CI', 'p', 'verdict'].map((x) => h('th', { scope: 'col' }, x)))),
    h('tbody', null, metrics.map((m) => h('tr', null,
      h('th', { scope: 'row' }, m.name), h('td.num', null, fmt(m.a)), h('td.num', null, fmt(m.b)),
      h('td.num', null, pct(m.delta)), h('td.num', null, m.ci ? `[${pct(m.ci[0])}, ${pct(m.ci[1])}]` : '–'),
      h('td.num', null, fmt(m.p_value)), h('td', null, verdictBadge(m.verdict))))));
  const interval = h('div.interval', { id: 'exp-interval' });
  if (!metricSel) {
    metricSel = h('select', { id: 'exp-metric', 'aria-label': 'Metric', onchange: () => { convChart?.destroy(); convChart = null; refresh(); } });
    convBox = h('div.chart', { id: 'exp-convergence' });
  }
  const names = metrics.map((m) => m.name);
  const cur = metricSel.value || names[0];
  metricSel.replaceChildren(...names.map((n) => h('option', { value: n, selected: n === cur }, n)));
  detailBox.replaceChildren(head,
    h('div.grid2', null,
      h('figure.card', null, h('figcaption', null, `Δ per metric with its confidence interval (band: ±${pct(threshold, 1)})`), interval),
      h('figure.card', null, h('figcaption', null, 'Convergence of ', metricSel), convBox)),
    table);
  if (metrics.length) drawIntervals(interval, metrics, threshold);
  else message(interval, 'info', 'No estimate yet: the first look comes after a few blocks.');
  drawConvergence(e.history || [], metricSel.value, threshold);
}

function drawIntervals(el, metrics, threshold) {
  const width = Math.max(300, el.clientWidth || 520), rowH = 28, left = 150, right = 20, top = 6;
  const height = top + rowH * metrics.length + 26;
  let lo = -threshold * 2, hi = threshold * 2;
  for (const m of metrics) {
    for (const v of [m.delta, ...(m.ci || [])]) if (Number.isFinite(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  }
  const pad = (hi - lo) * 0.08;
  const x = scaleLinear().domain([lo - pad, hi + pad]).range([left, width - right]).nice();
  const y = scaleBand().domain(metrics.map((m) => m.name)).range([top, top + rowH * metrics.length]).padding(0.3);
  const svg = select(el).append('svg').attr('width', width).attr('height', height).attr('role', 'img')
    .attr('aria-label', 'relative difference of each metric with its confidence interval');
  svg.append('rect').attr('class', 'band').attr('x', x(-threshold)).attr('width', x(threshold) - x(-threshold))
    .attr('y', top).attr('height', rowH * metrics.length);
  svg.append('line').attr('class', 'zero').attr('x1', x(0)).attr('x2', x(0)).attr('y1', top).attr('y2', top + rowH * metrics.length);
  const row = svg.selectAll('g.row').data(metrics).join('g').attr('class', (m) => 'row v-' + String(m.verdict).toLowerCase())
    .attr('transform', (m) => `translate(0,${y(m.name) + y.bandwidth() / 2})`);
  row.append('text').attr('class', 'label').attr('x', left - 8).attr('dy', '0.35em').attr('text-anchor', 'end').text((m) => m.name);
  const ok = (m) => m.ci && Number.isFinite(m.ci[0]) && Number.isFinite(m.ci[1]);
  row.filter(ok).append('line').attr('class', 'ci').attr('x1', (m) => x(m.ci[0])).attr('x2', (m) => x(m.ci[1]));
  row.filter(ok).append('line').attr('class', 'ci-end').attr('x1', (m) => x(m.ci[0])).attr('x2', (m) => x(m.ci[0])).attr('y1', -6).attr('y2', 6);
  row.filter(ok).append('line').attr('class', 'ci-end').attr('x1', (m) => x(m.ci[1])).attr('x2', (m) => x(m.ci[1])).attr('y1', -6).attr('y2', 6);
  row.filter((m) => Number.isFinite(m.delta)).append('circle').attr('class', 'delta').attr('r', 4).attr('cx', (m) => x(m.delta))
    .append('title').text((m) => `${m.name}: Δ ${pct(m.delta)}, CI ${ok(m) ? `[${pct(m.ci[0])}, ${pct(m.ci[1])}]` : '–'}, ${m.verdict}`);
  svg.append('g').attr('class', 'axis').attr('transform', `translate(0,${top + rowH * metrics.length})`)
    .call(axisBottom(x).ticks(Math.max(3, Math.floor(width / 90))).tickFormat((v) => `${(v * 100).toFixed(1)}%`));
}

function drawConvergence(history, metric, threshold) {
  const pts = history.filter((p) => p.metric === metric);
  const xs = pts.map((p) => p.t_s);
  const data = [xs, pts.map((p) => p.hi * 100), pts.map((p) => p.delta * 100), pts.map((p) => p.lo * 100),
    xs.map(() => threshold * 100), xs.map(() => -threshold * 100)];
  if (!convChart || !convBox.isConnected || !convBox.firstChild) {
    convChart?.destroy();
    convChart = new Chart(convBox, {
      xTime: false, xLabel: 'seconds', yLabel: 'Δ %', height: 200,
      series: [
        { label: 'CI high', color: 'rgba(47,126,216,.5)', width: 1 },
        { label: 'Δ %', color: '#2f7ed8', width: 2 },
        { label: 'CI low', color: 'rgba(47,126,216,.5)', width: 1 },
        { label: '+threshold', color: '#999', dash: [4, 4], width: 1 },
        { label: '−threshold', color: '#999', dash: [4, 4], width: 1 },
      ],
      bands: [{ series: [1, 3], fill: 'rgba(47,126,216,.18)' }],
    });
  }
  convChart.setData(data);
}

async function stop(id) {
  try {
    await api(`/api/v1/experiments/${id}/stop`, { method: 'POST', body: {} });
  } catch (e) {
    message(formOut, 'error', e.message);
  }
  refresh();
}

// --- Start an experiment --------------------------------------------------------

function startForm() {
  const num = (name, value, attrs) => h('input', { name, id: 'exp-' + name, type: 'number', value, ...attrs });
  formOut = h('pre.result', { id: 'exp-result', 'aria-live': 'polite' });
  form = h('form.card.form', { id: 'exp-form', onsubmit: start },
    h('h3', null, 'Start an experiment'),
    h('p.hint', null, 'Runs variant B beside the stage\'s current plugin (A) on the same stream and compares them until the verdict is clear or time runs out.'),
    h('div.fields', null,
      h('label', null, 'stage ', h('select', { name: 'stage', id: 'exp-stage', required: true })),
      h('label', null, 'mode ', h('select', { name: 'mode', id: 'exp-mode' }, h('option', { value: 'duet' }, 'duet'), h('option', { value: 'interleaved' }, 'interleaved'))),
      h('label', null, 'B plugin ', h('input', { name: 'plugin', id: 'exp-plugin', required: true, size: 14 })),
      h('label', null, 'B version ', h('input', { name: 'version', id: 'exp-version', size: 7, placeholder: 'any' })),
      h('label', null, 'B params ', h('input', { name: 'params', id: 'exp-params', size: 16, placeholder: '{} (optional)' })),
      h('label', null, 'threshold ', num('threshold', 0.01, { step: 0.001, min: 0.001, max: 0.5 })),
      h('label', null, 'max s ', num('max_seconds', 60, { min: 1, max: 86400 })),
      h('label', null, 'block ms ', num('block_ms', '', { min: 1, placeholder: 'default' })),
      h('label', null, h('input', { type: 'checkbox', name: 'aa', id: 'exp-aa' }), ' A/A (B = A)'),
      h('button', { type: 'submit', id: 'exp-start' }, 'Start')),
    formOut);
  form.stage.addEventListener('change', prefill);
  return form;
}

function refreshStageOptions() {
  const cur = form.stage.value;
  const stages = liveStages().filter((s) => s.kind === 'transform');
  form.stage.replaceChildren(...stages.map((s) => h('option', { value: s.name, selected: s.name === cur }, s.name)));
  if (!form.plugin.value) prefill();
}

function prefill() {
  const s = liveStages().find((x) => x.name === form.stage.value);
  if (s) form.plugin.value = s.plugin;
}

async function start(ev) {
  ev.preventDefault();
  const f = form;
  const b = { plugin: f.plugin.value.trim() };
  if (f.version.value.trim()) b.version = f.version.value.trim();
  if (f.params.value.trim()) {
    try {
      b.params = JSON.parse(f.params.value);
    } catch (e) {
      message(formOut, 'error', 'B params is not JSON: ' + e.message);
      return;
    }
  }
  const body = { stage: f.stage.value, mode: f.mode.value, b, threshold: Number(f.threshold.value),
    max_seconds: Number(f.max_seconds.value), aa: f.aa.checked };
  if (f.block_ms.value) body.block_ms = Number(f.block_ms.value);
  formOut.className = 'result';
  formOut.textContent = 'starting…';
  try {
    const r = await api('/api/v1/experiments', { method: 'POST', body });
    formOut.className = 'result ok';
    formOut.textContent = JSON.stringify(r, null, 2);
    selected = r.id;
    convChart?.destroy();
    convChart = null;
    refresh();
  } catch (e) {
    formOut.className = 'result error';
    formOut.textContent = e.body ? JSON.stringify(e.body, null, 2) : e.message;
  }
}
