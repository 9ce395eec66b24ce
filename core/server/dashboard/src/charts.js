// uPlot time-series charts that follow the page's theme and width. A chart
// is (re)created from a spec, so switching light/dark rebuilds it with the
// new colours; data lives outside, with the caller.
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export const PALETTE = ['#2f7ed8', '#e4572e', '#29a36a', '#a05fd6', '#d4a017', '#17a2b8', '#e83e8c', '#6c757d'];

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

const charts = new Set();

// spec: {title, series: [{label, color?, dash?, scale?}], axes?: [{label, scale, side}],
//        bands?, height?, xTime? (default true), xLabel?}
export class Chart {
  constructor(container, spec) {
    this.container = container;
    this.spec = spec;
    this.data = [[], ...spec.series.map(() => [])];
    this.plot = null;
    this.build();
    charts.add(this);
    container.chart = this; // lets the browser test read what a chart holds
  }

  opts() {
    const fg = cssVar('--fg-muted') || '#666';
    const grid = cssVar('--grid') || 'rgba(127,127,127,.2)';
    const s = this.spec;
    const width = Math.max(240, this.container.clientWidth || 600);
    const axisY = (a) => ({
      scale: a.scale || 'y',
      side: a.side ?? 3,
      label: a.label,
      stroke: fg,
      grid: { stroke: grid, show: (a.side ?? 3) === 3 },
      ticks: { stroke: grid },
      size: 60,
      values: (u, vals) => vals.map((v) => fmtAxis(v)),
    });
    return {
      title: s.title,
      width,
      height: s.height || 220,
      pxAlign: 0,
      legend: { live: true },
      cursor: { drag: { x: true, y: false } },
      scales: { x: { time: s.xTime !== false }, ...(s.scales || {}) },
      series: [
        { label: s.xLabel || 'time' },
        ...s.series.map((x, i) => ({
          label: x.label,
          stroke: x.color || PALETTE[i % PALETTE.length],
          width: x.width || 1.5,
          dash: x.dash,
          scale: x.scale || 'y',
          fill: x.fill,
          spanGaps: x.spanGaps ?? s.spanGaps ?? false,
          points: { show: x.points ?? s.points ?? false, size: 5 },
          value: (u, v) => (v === null || v === undefined ? '–' : fmtAxis(v)),
        })),
      ],
      bands: s.bands,
      axes: [
        { stroke: fg, grid: { stroke: grid }, ticks: { stroke: grid }, label: s.xTime === false ? s.xLabel : undefined },
        ...(s.axes || [{ label: s.yLabel }]).map(axisY),
      ],
    };
  }

  build() {
    if (this.plot) this.plot.destroy();
    this.container.replaceChildren();
    this.plot = new uPlot(this.opts(), this.data, this.container);
  }

  setData(data) {
    this.data = data;
    this.plot.setData(data);
  }

  resize() {
    const w = Math.max(240, this.container.clientWidth || 600);
    if (this.plot && Math.abs(this.plot.width - w) > 2) this.plot.setSize({ width: w, height: this.plot.height });
  }

  destroy() {
    charts.delete(this);
    if (this.plot) this.plot.destroy();
    this.plot = null;
  }
}

function fmtAxis(v) {
  if (v === null || v === undefined) return '';
  const a = Math.abs(v);
  if (a >= 1e9) return (v / 1e9).toPrecision(3) + 'G';
  if (a >= 1e6) return (v / 1e6).toPrecision(3) + 'M';
  if (a >= 1e4) return (v / 1e3).toPrecision(3) + 'k';
  if (a === 0) return '0';
  if (a < 0.01) return v.toExponential(1);
  return Number(v.toPrecision(3)).toString();
}

export function rebuildAll() {
  for (const c of charts) if (c.container.isConnected) c.build();
}

export function resizeAll() {
  for (const c of charts) if (c.container.offsetParent !== null) c.resize();
}

let pending = 0;
window.addEventListener('resize', () => {
  clearTimeout(pending);
  pending = setTimeout(resizeAll, 100);
});
