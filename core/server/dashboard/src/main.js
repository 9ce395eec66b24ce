// The dashboard's entry point: tabs (kept in the URL's #fragment), the
// status line, light/dark theme and the API token. Each tab is a module:
// live.js, profile.js, experiments.js, runs.js.
import './style.css';
import { initLive } from './live.js';
import { initProfile, refreshStages } from './profile.js';
import { initExperiments, showExperiments, hideExperiments } from './experiments.js';
import { initRuns, refreshRuns } from './runs.js';
import { rebuildAll, resizeAll } from './charts.js';
import { api } from './api.js';
import { h } from './dom.js';

const TABS = ['live', 'profile', 'experiments', 'runs'];

function theme(t) {
  document.documentElement.dataset.theme = t;
  localStorage.setItem('obs.theme', t);
}

function initialTheme() {
  const saved = localStorage.getItem('obs.theme');
  if (saved === 'light' || saved === 'dark') return saved;
  return window.matchMedia && window.matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
}

function status(j, err) {
  const el = document.getElementById('status');
  if (err) {
    el.textContent = 'hostd: ' + err.message;
    el.className = 'status bad';
    return;
  }
  el.textContent = `pipeline ${j.pipeline} · ${j.state} · ${j.stages.length} stages`;
  el.className = 'status ' + (j.state === 'running' ? 'ok' : '');
}

let defaultTab = 'live';

function show(tab) {
  if (!TABS.includes(tab)) tab = defaultTab;
  for (const t of TABS) {
    const on = t === tab;
    document.getElementById('panel-' + t).hidden = !on;
    const b = document.getElementById('tab-' + t);
    b.setAttribute('aria-selected', on ? 'true' : 'false');
    b.tabIndex = on ? 0 : -1;
  }
  if (tab === 'profile') refreshStages();
  if (tab === 'experiments') showExperiments();
  else hideExperiments();
  if (tab === 'runs') refreshRuns();
  requestAnimationFrame(resizeAll);
}

// hostd dashboard --store A --store B: no pipeline in this process, only
// stored runs (live while the processes writing them run).
async function storesOnly() {
  try {
    const j = await api('/api/v1/status');
    return !j.pipeline && j.stores > 0 ? j.stores : 0;
  } catch {
    return 0;
  }
}

async function main() {
  theme(initialTheme());
  document.getElementById('theme').addEventListener('click', () => {
    theme(document.documentElement.dataset.theme === 'dark' ? 'light' : 'dark');
    rebuildAll();
  });
  const tok = document.getElementById('token');
  tok.value = localStorage.getItem('obs.token') || '';
  tok.addEventListener('change', () => localStorage.setItem('obs.token', tok.value.trim()));

  const nStores = await storesOnly();
  if (nStores) {
    defaultTab = 'runs';
    const el = document.getElementById('status');
    el.textContent = `hostd dashboard · ${nStores} run store${nStores === 1 ? '' : 's'} · no pipeline in this process`;
    el.className = 'status ok';
    document.getElementById('panel-live').append(h('div.msg', { role: 'status' },
      'This hostd runs no pipeline (hostd dashboard): its stores\' runs are under Runs, live while their processes run.'));
  } else {
    initLive(document.getElementById('panel-live'), status);
  }
  initProfile(document.getElementById('panel-profile'));
  initExperiments(document.getElementById('panel-experiments'));
  initRuns(document.getElementById('panel-runs'));

  const tablist = document.querySelector('.tabs');
  tablist.addEventListener('click', (e) => {
    const t = e.target.closest('[data-tab]');
    if (t) location.hash = t.dataset.tab;
  });
  tablist.addEventListener('keydown', (e) => {
    if (e.key !== 'ArrowRight' && e.key !== 'ArrowLeft') return;
    const i = TABS.indexOf((location.hash || '#live').slice(1));
    const next = TABS[(i + (e.key === 'ArrowRight' ? 1 : TABS.length - 1)) % TABS.length];
    location.hash = next;
    document.getElementById('tab-' + next).focus();
  });
  window.addEventListener('hashchange', () => show(location.hash.slice(1)));
  show(location.hash.slice(1));
}

main();
