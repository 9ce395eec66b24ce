// Profile: takes a CPU profile of a stage through GET /profile?format=json,
// turns it into the call tree d3-flame-graph draws (zoom on click, regex
// search), keeps every profile taken in the page, and draws the difference
// of two of them: the newer profile, coloured by how each frame's share of
// all samples changed (red grew, blue shrank), as docs/profiling.md does.
import { select } from 'd3-selection';
import flamegraph from 'd3-flame-graph';
import { api } from './api.js';
import { h, message, pct } from './dom.js';
import { liveStages } from './live.js';

let stageSel, secondsIn, takeBtn, statusBox, listSel, beforeSel, afterSel, searchIn, details, graphBox, titleBox;
let chart = null;
const profiles = [];

export function initProfile(panel) {
  stageSel = h('select', { id: 'profile-stage', 'aria-label': 'Stage' });
  secondsIn = h('input', { id: 'profile-seconds', type: 'number', min: 1, max: 60, value: 5, 'aria-label': 'Seconds' });
  takeBtn = h('button', { id: 'profile-take', type: 'button', onclick: take }, 'Take profile');
  statusBox = h('div.profile-status', { id: 'profile-status', 'aria-live': 'polite' });
  listSel = h('select', { id: 'profile-list', 'aria-label': 'Profile to show', onchange: () => showOne(profiles[listSel.value]) });
  beforeSel = h('select', { id: 'diff-before', 'aria-label': 'Before' });
  afterSel = h('select', { id: 'diff-after', 'aria-label': 'After' });
  searchIn = h('input', { id: 'flame-search', type: 'search', placeholder: 'search (regex)', 'aria-label': 'Search frames',
    oninput: () => chart && (searchIn.value ? chart.search(searchIn.value) : chart.clear()) });
  details = h('div.flame-details', { id: 'flame-details' });
  titleBox = h('h3.flame-title', { id: 'flame-title' });
  graphBox = h('div.flame', { id: 'flame' });
  panel.append(
    h('div.toolbar', null, h('h2', null, 'Profile'),
      h('label', null, 'stage ', stageSel), h('label', null, 'seconds ', secondsIn), takeBtn, statusBox),
    h('div.toolbar', null,
      h('label', null, 'show ', listSel),
      h('span.sep'),
      h('label', null, 'before ', beforeSel), h('label', null, 'after ', afterSel),
      h('button', { id: 'diff-show', type: 'button', onclick: showDiff }, 'Difference'),
      h('span.sep'),
      searchIn,
      h('button', { type: 'button', id: 'flame-reset', onclick: () => chart && chart.resetZoom() }, 'Reset zoom')),
    h('div.card', null, titleBox, details, graphBox),
    h('p.hint', null, 'Click a frame to zoom into it; search takes a regular expression. ',
      'Blue-green frames are plugin code (module:function), warm ones host and system code, grey ones tags. ',
      'In a difference, red frames take a larger share of the samples after than before, blue a smaller one.'),
  );
  refreshStages();
  renderLists();
}

export function refreshStages() {
  const stages = liveStages();
  const cur = stageSel.value;
  const opts = [h('option', { value: '' }, 'all stages')];
  for (const s of stages) opts.push(h('option', { value: s.name, selected: s.name === cur }, `${s.name} (${s.plugin} ${s.version})`));
  if (!cur && stages.length) {
    const t = stages.find((s) => s.kind === 'transform');
    if (t) opts.find((o) => o.value === t.name).selected = true;
  }
  stageSel.replaceChildren(...opts);
}

async function take() {
  const seconds = Math.max(1, Math.min(60, Number(secondsIn.value) || 5));
  const stage = stageSel.value;
  const q = new URLSearchParams({ seconds: String(seconds), format: 'json' });
  if (stage) q.set('stage', stage);
  takeBtn.disabled = true;
  const t0 = Date.now();
  const tick = setInterval(() => {
    statusBox.textContent = `profiling ${stage || 'all stages'}… ${Math.max(0, seconds - (Date.now() - t0) / 1000).toFixed(0)} s`;
  }, 250);
  statusBox.textContent = `profiling ${stage || 'all stages'}… ${seconds} s`;
  try {
    const p = await api('/profile?' + q);
    const when = new Date().toLocaleTimeString();
    const st = liveStages().find((s) => s.name === stage);
    const label = `#${profiles.length + 1} ${stage || 'all'}${st ? ` ${st.plugin} ${st.version}` : ''}, ${seconds} s at ${when}`;
    profiles.push({ label, p, tree: toTree(p, false) });
    statusBox.textContent = `${p.n_samples} samples`;
    renderLists();
    listSel.value = String(profiles.length - 1);
    showOne(profiles[profiles.length - 1]);
  } catch (e) {
    message(statusBox, 'error', e.message);
  } finally {
    clearInterval(tick);
    takeBtn.disabled = false;
  }
}

function renderLists() {
  const opts = (sel, pick) => {
    sel.replaceChildren(...profiles.map((x, i) => h('option', { value: i, selected: i === pick }, x.label)));
    sel.disabled = profiles.length === 0;
  };
  opts(listSel, profiles.length - 1);
  opts(beforeSel, Math.max(0, profiles.length - 2));
  opts(afterSel, profiles.length - 1);
  document.getElementById('diff-show')?.toggleAttribute('disabled', profiles.length < 2);
}

function tagName(tag, stageOnly) {
  if (!tag) return '[untagged]';
  if (stageOnly) return `[stage=${tag.stage ?? '?'}]`;
  return '[' + Object.keys(tag).sort().map((k) => `${k}=${tag[k]}`).join(' ') + ']';
}

function libtype(f) {
  if (f.name.includes(':')) return 'plugin';
  return '';
}

// The profile's call tree: all -> tag -> stack frames, root first; each
// node's value is its inclusive weight (samples, weighted).
export function toTree(p, stageOnlyTags) {
  const root = { name: 'all', value: 0, children: [], l: 'tag' };
  const child = (node, name, l) => {
    node._m = node._m || new Map();
    let c = node._m.get(name);
    if (!c) {
      c = { name, value: 0, children: [], l };
      node._m.set(name, c);
      node.children.push(c);
    }
    return c;
  };
  for (const s of p.samples) {
    const w = s.weight || s.count || 0;
    root.value += w;
    let node = child(root, tagName(p.tags[s.tag], stageOnlyTags), 'tag');
    node.value += w;
    for (const fi of p.stacks[s.stack] || []) {
      const f = p.frames[fi];
      node = child(node, f.name, libtype(f));
      node.value += w;
    }
  }
  const strip = (n) => {
    delete n._m;
    n.children.forEach(strip);
  };
  strip(root);
  return root;
}

// The difference: the `after` tree, each node with `delta` (its inclusive
// weight minus the before tree's, scaled to after's total) and both shares.
export function diffTree(before, after) {
  const scale = before.value ? after.value / before.value : 0;
  const walk = (a, b) => {
    const out = { name: a.name, value: a.value, l: a.l, children: [] };
    const bv = b ? b.value : 0;
    out.delta = a.value - bv * scale;
    out.shareAfter = after.value ? a.value / after.value : 0;
    out.shareBefore = before.value ? bv / before.value : 0;
    const bm = new Map((b ? b.children : []).map((c) => [c.name, c]));
    out.children = a.children.map((c) => walk(c, bm.get(c.name)));
    return out;
  };
  return walk(after, before);
}

function colorOf(d, diff) {
  if (d.highlight) return '#e600e6';
  const data = d.data;
  if (diff) {
    const v = Math.max(data.value, Math.abs(data.delta)) || 1;
    const x = Math.min(1, Math.abs(data.delta) / v);
    const k = Math.round(235 * (1 - x));
    if (Math.abs(data.delta) < 1e-9) return 'rgb(225,225,225)';
    return data.delta > 0 ? `rgb(235,${k},${k})` : `rgb(${k},${k},235)`;
  }
  let hsh = 0;
  for (let i = 0; i < data.name.length; i++) hsh = (hsh * 31 + data.name.charCodeAt(i)) >>> 0;
  const r = (hsh % 1000) / 1000;
  if (data.l === 'tag') return `rgb(${190 + Math.round(20 * r)},${190 + Math.round(20 * r)},${190 + Math.round(20 * r)})`;
  if (data.l === 'plugin') return `rgb(${60 + Math.round(50 * r)},${170 + Math.round(40 * r)},${170 + Math.round(50 * r)})`;
  return `rgb(${205 + Math.round(50 * r)},${Math.round(80 + 140 * r)},${Math.round(40 * r)})`;
}

function draw(tree, title, diff) {
  titleBox.textContent = title;
  graphBox.replaceChildren();
  details.textContent = '';
  if (chart) chart.destroy?.();
  const width = Math.max(320, graphBox.clientWidth || 900);
  chart = flamegraph()
    .width(width)
    .cellHeight(18)
    .transitionDuration(300)
    .minFrameSize(1)
    .sort(true)
    .title('')
    .selfValue(false)
    .setColorMapper((d) => colorOf(d, diff))
    .setDetailsElement(details)
    .setLabelHandler((d) => {
      const total = tree.value || 1;
      if (diff) {
        const pp = (d.data.shareAfter - d.data.shareBefore) * 100;
        return `${d.data.name}: ${pct(d.data.shareAfter)} of samples after, ${pct(d.data.shareBefore)} before (${pp >= 0 ? '+' : ''}${pp.toFixed(2)} pp)`;
      }
      return `${d.data.name}: ${d.data.value} samples, ${pct(d.data.value / total)}`;
    });
  select(graphBox).datum(tree).call(chart);
  if (searchIn.value) chart.search(searchIn.value);
}

function showOne(x) {
  if (!x) return;
  if (!x.p.n_samples) {
    titleBox.textContent = x.label;
    message(graphBox, 'info', 'No samples in this window: the stage used no CPU, or the profiler is off.');
    return;
  }
  draw(x.tree, `${x.label}: ${x.p.n_samples} samples at ${x.p.hz} Hz`, false);
}

function showDiff() {
  const b = profiles[beforeSel.value], a = profiles[afterSel.value];
  if (!a || !b) return;
  const tb = toTree(b.p, true), ta = toTree(a.p, true);
  draw(diffTree(tb, ta), `Difference: ${b.label} → ${a.label}`, true);
}
