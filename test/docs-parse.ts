// Readers for what docs/metrics.md and docs/grafana/hashwire.json claim, and for what a service
// really exposes (Prometheus text, statsd datagrams), so test/docs.test.ts can compare them.

/** One row of a metrics table in docs/metrics.md. */
export interface DocumentedMetric {
  name: string;
  type: string;
  /** Label name → documented values (empty when the values are open, e.g. `method`). */
  labels: Map<string, string[]>;
  /** The statsd name after the prefix; null for Prometheus-only series. */
  statsd: string | null;
  /** Service kinds that feed it; null for process metrics (every service). */
  fedBy: string[] | null;
}

const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary']);

function cells(line: string): string[] {
  return line
    .trim()
    .replace(/^\||\|$/g, '')
    .split('|')
    .map((c) => c.trim());
}

function ticks(cell: string): string[] {
  return [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);
}

/**
 * Every table row whose first cell is a backticked metric name and second a Prometheus type.
 * The hashwire table has the columns name | type | labels | statsd | fed by | meaning; the
 * process table name | type | labels | meaning.
 */
export function parseMetricsDoc(markdown: string): DocumentedMetric[] {
  const rows: DocumentedMetric[] = [];
  for (const line of markdown.split('\n')) {
    if (!line.startsWith('|')) continue;
    const c = cells(line);
    const name = /^`([a-z_:][a-z0-9_:]*)`$/.exec(c[0] ?? '')?.[1];
    if (!name || !TYPES.has(c[1] ?? '')) continue;
    const labels = new Map<string, string[]>();
    // `result`: `accepted`, `stale` ; `method` (open)
    for (const part of (c[2] ?? '').split(';')) {
      const [label, ...values] = ticks(part);
      if (label) labels.set(label, values);
    }
    const hashwire = c.length >= 6;
    rows.push({
      name,
      type: c[1]!,
      labels,
      statsd: hashwire ? (ticks(c[3] ?? '')[0] ?? null) : null,
      fedBy: hashwire ? ticks(c[4] ?? '') : null,
    });
  }
  return rows;
}

/** A parsed Prometheus text exposition: family name → type, and every sample. */
export interface Exposition {
  types: Map<string, string>;
  samples: { name: string; labels: Record<string, string>; value: number }[];
}

export function parseExposition(text: string): Exposition {
  const types = new Map<string, string>();
  const samples: Exposition['samples'] = [];
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) types.set(type[1]!, type[2]!);
    if (line === '' || line.startsWith('#')) continue;
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)/.exec(line);
    if (!sample) throw new Error(`unreadable exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const m of (sample[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[m[1]!] = m[2]!;
    }
    samples.push({ name: sample[1]!, labels, value: Number(sample[3]) });
  }
  return { types, samples };
}

/** The family a sample belongs to (`x_bucket` of histogram `x` → `x`). */
export function familyOf(sample: string, types: Map<string, string>): string {
  if (types.has(sample)) return sample;
  const base = sample.replace(/_(bucket|sum|count|created)$/, '');
  return types.has(base) ? base : sample;
}

/** One DogStatsD line `prefix.name:value|type|#k:v,…` → name (prefix removed), type, tags. */
export function parseStatsdLine(
  line: string,
  prefix: string,
): { name: string; type: string; tags: Record<string, string> } {
  const m = /^([^:|]+):([^|]+)\|([a-z]+)(?:\|#(.*))?$/.exec(line);
  if (!m || !m[1]!.startsWith(prefix)) throw new Error(`unexpected statsd line: ${line}`);
  const tags: Record<string, string> = {};
  for (const tag of (m[4] ?? '').split(',').filter(Boolean)) {
    const at = tag.indexOf(':');
    tags[tag.slice(0, at)] = tag.slice(at + 1);
  }
  return { name: m[1]!.slice(prefix.length), type: m[3]!, tags };
}

const PROMQL_WORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'bool',
  'and',
  'or',
  'unless',
  'offset',
  'inf',
  'nan',
]);

/**
 * Metric names and label names a PromQL expression (or a Grafana `label_values(...)` query)
 * refers to. Grafana variables (`$chain`, `${DS}`, `$__rate_interval`) and string literals are
 * left out; a word followed by `(` is a function.
 */
export function promqlReferences(expr: string): { metrics: Set<string>; labels: Set<string> } {
  const metrics = new Set<string>();
  const labels = new Set<string>();
  let rest = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""').replace(/\$\{[^}]*\}|\$[A-Za-z_]+/g, ' ');
  // Label matchers: {a=~"", b!=""}
  rest = rest.replace(/\{([^}]*)\}/g, (_all, inner: string) => {
    for (const m of inner.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)/g)) labels.add(m[1]!);
    return ' ';
  });
  // Grouping: by (a, b), without (a), on (a), ignoring (a), group_left (a)
  rest = rest.replace(
    /\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g,
    (_all, _kw, inner: string) => {
      for (const l of inner
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean))
        labels.add(l);
      return ' ';
    },
  );
  // label_values(metric, label): the second argument is a label.
  rest = rest.replace(
    /label_values\s*\(([^,()]*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)/g,
    (_a, m: string, l: string) => {
      labels.add(l);
      return ` ${m} `;
    },
  );
  rest = rest.replace(/\[[^\]]*\]/g, ' '); // range selectors
  for (const m of rest.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?/g)) {
    const word = m[1]!;
    if (m[2] || PROMQL_WORDS.has(word.toLowerCase())) continue;
    if (/^\d/.test(word)) continue;
    metrics.add(word);
  }
  return { metrics, labels };
}

interface GrafanaPanel {
  id?: number;
  title?: string;
  type?: string;
  datasource?: unknown;
  targets?: { expr?: string }[];
  panels?: GrafanaPanel[];
}

/** Every panel of a dashboard, rows' nested panels included. */
export function grafanaPanels(dashboard: { panels?: GrafanaPanel[] }): GrafanaPanel[] {
  const out: GrafanaPanel[] = [];
  const walk = (list: GrafanaPanel[] | undefined) => {
    for (const p of list ?? []) {
      out.push(p);
      walk(p.panels);
    }
  };
  walk(dashboard.panels);
  return out;
}
