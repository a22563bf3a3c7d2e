// Envoy's global stats store as far as Wasm reaches it (§5): one stat per full name shared by every VM, created at
// define time; /stats and /stats/prometheus rendering with tag extraction (stats_tags + a subset of default tags).
import type { StatsView } from "./api.ts";

export type StatType = 0 | 1 | 2; // counter, gauge, histogram

export class Stat {
  value = 0n; // u64
  samples: number[] = [];
  constructor(readonly name: string, readonly type: StatType) {}
}

interface Extractor { name: string; re: RegExp }

// Envoy default tag extractors that can match a custom name (the rest are anchored on http./cluster./listener. …)
const DEFAULT_TAGS: Array<{ tagName: string; regex: string }> = [
  { tagName: "envoy.response_code", regex: "_rq(_(\\d{3}))$" },
  { tagName: "envoy.response_code_class", regex: "_rq(_(\\dxx))$" },
  { tagName: "envoy.cluster_name", regex: "^cluster\\.((.*?)\\.)" },
];

const HISTO_BUCKETS = [0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000,
  1800000, 3600000];
const QUANTILES = [0, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 100];

export class StatsStore implements StatsView {
  readonly byName = new Map<string, Stat>();
  private extractors: Extractor[] = [];
  private customNamespaces = new Set<string>();

  constructor(statsTags: Array<{ tagName: string; regex: string }> = [], useAllDefaultTags = true) {
    const seen = new Set<string>();
    for (const t of statsTags) {
      this.extractors.push({ name: t.tagName, re: new RegExp(t.regex, "d") });
      seen.add(t.tagName);
    }
    if (useAllDefaultTags) {
      for (const t of DEFAULT_TAGS) if (!seen.has(t.tagName)) this.extractors.push({ name: t.tagName, re: new RegExp(t.regex, "d") });
    }
  }

  registerCustomNamespace(ns: string): void {
    this.customNamespaces.add(ns);
  }

  stat(name: string, type: StatType): Stat {
    let s = this.byName.get(name);
    if (!s) {
      s = new Stat(name, type);
      this.byName.set(name, s);
    }
    return s;
  }
  counter(name: string): Stat {
    return this.stat(name, 0);
  }
  gauge(name: string): Stat {
    return this.stat(name, 1);
  }

  get(name: string): number | undefined {
    const s = this.byName.get(name);
    if (!s) return undefined;
    if (s.type === 2) return s.samples.length;
    return Number(s.value);
  }
  samples(name: string): number[] | undefined {
    const s = this.byName.get(name);
    return s && s.type === 2 ? s.samples.slice() : undefined;
  }

  /** TagProducerImpl: every extractor runs on the full name; group 1 is removed, group 2 (else 1) is the value. */
  extractTags(name: string): { name: string; tags: Array<[string, string]> } {
    const tags: Array<[string, string]> = [];
    const removed: Array<[number, number]> = [];
    for (const ex of this.extractors) {
      ex.re.lastIndex = 0;
      const m = ex.re.exec(name);
      if (!m || m[1] === undefined) continue;
      tags.push([ex.name, m[2] ?? m[1]]);
      const idx = (m as RegExpExecArray & { indices: Array<[number, number] | undefined> }).indices[1];
      if (idx) removed.push(idx);
    }
    if (removed.length === 0) return { name, tags };
    removed.sort((a, b) => a[0] - b[0]);
    let out = "", pos = 0;
    for (const [s, e] of removed) {
      if (s > pos) out += name.slice(pos, s);
      pos = Math.max(pos, e);
    }
    out += name.slice(pos);
    return { name: out, tags };
  }

  /** PrometheusStatsFormatter::metricName */
  promName(extracted: string): string | undefined {
    for (const ns of this.customNamespaces) {
      if (extracted.startsWith(ns + ".")) {
        const s = sanitize(extracted.slice(ns.length + 1));
        if (s === "" || /^[0-9]/.test(s)) return undefined;
        return s;
      }
    }
    return "envoy_" + sanitize(extracted);
  }

  renderText(): string {
    const lines: string[] = [];
    const names = [...this.byName.keys()].sort();
    for (const n of names) {
      const s = this.byName.get(n)!;
      if (s.type !== 2) lines.push(`${n}: ${s.value}`);
    }
    for (const n of names) {
      const s = this.byName.get(n)!;
      if (s.type !== 2) continue;
      if (s.samples.length === 0) lines.push(`${n}: No recorded values`);
      else {
        const sorted = s.samples.slice().sort((a, b) => a - b);
        const parts = QUANTILES.map((q) => {
          const v = quantile(sorted, q / 100);
          return `P${q}(${v},${v})`;
        });
        lines.push(`${n}: ${parts.join(" ")}`);
      }
    }
    return lines.join("\n") + (lines.length ? "\n" : "");
  }

  renderPrometheus(): string {
    type Row = { labels: string; s: Stat };
    const groups = new Map<string, { type: StatType; rows: Row[] }>();
    for (const s of this.byName.values()) {
      const { name, tags } = this.extractTags(s.name);
      const pn = this.promName(name);
      if (pn === undefined) continue;
      const labels = tags.map(([k, v]) => `${sanitize(k)}="${escapeLabel(v)}"`).join(",");
      let g = groups.get(pn);
      if (!g) {
        g = { type: s.type, rows: [] };
        groups.set(pn, g);
      }
      g.rows.push({ labels, s });
    }
    const out: string[] = [];
    for (const pn of [...groups.keys()].sort()) {
      const g = groups.get(pn)!;
      const kind = g.type === 0 ? "counter" : g.type === 1 ? "gauge" : "histogram";
      out.push(`# TYPE ${pn} ${kind}`);
      for (const { labels, s } of g.rows) {
        const lb = labels ? `{${labels}}` : "";
        if (s.type !== 2) {
          out.push(`${pn}${lb} ${s.value}`);
          continue;
        }
        let sum = 0;
        for (const v of s.samples) sum += v;
        for (const b of HISTO_BUCKETS) {
          const c = s.samples.filter((v) => v <= b).length;
          out.push(`${pn}_bucket{${labels ? labels + "," : ""}le="${b}"} ${c}`);
        }
        out.push(`${pn}_bucket{${labels ? labels + "," : ""}le="+Inf"} ${s.samples.length}`);
        out.push(`${pn}_sum${lb} ${sum}`);
        out.push(`${pn}_count${lb} ${s.samples.length}`);
      }
    }
    return out.join("\n") + (out.length ? "\n" : "");
  }
}

function sanitize(s: string): string {
  return s.replace(/[^a-zA-Z0-9_]/g, "_");
}
function escapeLabel(s: string): string {
  return s.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}
function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i];
}
