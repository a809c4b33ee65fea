import type { HashrateHistory } from '@hashwire/client';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { h } from './dom.js';
import { hashrate } from './format.js';

/**
 * A hashrate chart over time: the stored history the API keeps (a point every 5 minutes over
 * the last hour or two, one every hour over 24 h, each at the start of its interval), then the
 * 5 min, 1 h and 24 h averages as the page samples them from then on.
 */
export interface HashrateChart {
  readonly element: HTMLElement;
  /** Lays the stored history under the samples (again after a reconnect: points are keyed by time). */
  history(history: HashrateHistory): void;
  add(atMs: number, rates: { '5m': number; '1h': number; '24h': number }): void;
}

const MAX_SAMPLES = 2_000;
type Row = [number | null, number | null, number | null];

export function hashrateChart(label: string, testId?: string): HashrateChart {
  const holder = h('div', {
    class: 'chart',
    role: 'img',
    'aria-label': label,
    ...(testId !== undefined && { 'data-testid': testId }),
  });
  // Time (s) → the three series; history and samples never share a time by chance only.
  const history = new Map<number, Row>();
  const samples = new Map<number, Row>();
  let plot: uPlot | null = null;
  const width = () => Math.max(280, holder.clientWidth || 600);
  const columns = (): uPlot.AlignedData => {
    const rows = new Map<number, Row>(history);
    for (const [x, row] of samples) rows.set(x, row);
    const xs = [...rows.keys()].sort((a, b) => a - b);
    const out: [number[], (number | null)[], (number | null)[], (number | null)[]] = [xs, [], [], []];
    for (const x of xs) {
      const row = rows.get(x)!;
      out[1].push(row[0]);
      out[2].push(row[1]);
      out[3].push(row[2]);
    }
    // For a look from the console and the end-to-end test: what is drawn, and from when.
    const drawn = xs.filter((x) => rows.get(x)!.some((v) => v !== null && v > 0));
    holder.dataset.points = String(xs.length);
    holder.dataset.firstNonZeroMs = drawn.length > 0 ? String(drawn[0]! * 1000) : '';
    return out;
  };
  const make = () =>
    new uPlot(
      {
        width: width(),
        height: 220,
        // History has 5 min points and hour points at different times: each line spans its gaps.
        series: [
          {},
          {
            label: '5 min',
            stroke: '#1d5fbf',
            width: 2,
            spanGaps: true,
            value: (_u, v) => (v == null ? '–' : hashrate(v)),
          },
          {
            label: '1 h',
            stroke: '#a3431f',
            width: 2,
            spanGaps: true,
            value: (_u, v) => (v == null ? '–' : hashrate(v)),
          },
          {
            label: '24 h',
            stroke: '#3b6e2a',
            width: 2,
            spanGaps: true,
            value: (_u, v) => (v == null ? '–' : hashrate(v)),
          },
        ],
        axes: [{}, { size: 80, values: (_u, ticks) => ticks.map((t) => hashrate(t)) }],
      },
      columns(),
      holder,
    );
  new ResizeObserver(() => plot?.setSize({ width: width(), height: 220 })).observe(holder);
  const draw = () => {
    if (!holder.isConnected) return;
    if (plot === null) plot = make();
    else plot.setData(columns());
  };
  return {
    element: holder,
    history(stored) {
      history.clear();
      for (const p of stored.fiveMinutes) {
        const x = p.t / 1000;
        history.set(x, [p.hashrate, history.get(x)?.[1] ?? null, null]);
      }
      for (const p of stored.hours) {
        const x = p.t / 1000;
        history.set(x, [history.get(x)?.[0] ?? null, p.hashrate, null]);
      }
      draw();
    },
    add(atMs, rates) {
      samples.set(atMs / 1000, [rates['5m'], rates['1h'], rates['24h']]);
      if (samples.size > MAX_SAMPLES) samples.delete(samples.keys().next().value!);
      draw();
    },
  };
}
