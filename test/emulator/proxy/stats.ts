// The proxy's own Envoy stats (HCM and cluster), merged with the host's wasm stats for admin /stats and
// /stats/prometheus. Names follow Envoy: http.<stat_prefix>.*, cluster.<name>.*; Prometheus names use Envoy's default
// tag extraction for these two families (envoy_http_conn_manager_prefix, envoy_cluster_name).

type Kind = "counter" | "gauge";

export class ProxyStats {
  private readonly values = new Map<string, { kind: Kind; value: number }>();

  define(name: string, kind: Kind): void {
    if (!this.values.has(name)) this.values.set(name, { kind, value: 0 });
  }

  inc(name: string, delta = 1): void {
    const s = this.values.get(name) ?? { kind: "counter" as Kind, value: 0 };
    s.value += delta;
    this.values.set(name, s);
  }

  gaugeAdd(name: string, delta: number): void {
    const s = this.values.get(name) ?? { kind: "gauge" as Kind, value: 0 };
    s.kind = "gauge";
    s.value = Math.max(0, s.value + delta);
    this.values.set(name, s);
  }

  get(name: string): number | undefined {
    return this.values.get(name)?.value;
  }

  entries(): Array<[string, Kind, number]> {
    return [...this.values].map(([n, s]) => [n, s.kind, s.value]);
  }

  /** Envoy /stats lines ("name: value"), unsorted. */
  textLines(): string[] {
    return this.entries().map(([n, , v]) => `${n}: ${v}`);
  }

  renderPrometheus(): string {
    const byName = new Map<string, { kind: Kind; samples: string[] }>();
    for (const [name, kind, value] of this.entries()) {
      const { metric, labels } = promName(name);
      const e = byName.get(metric) ?? { kind, samples: [] };
      e.samples.push(`${metric}{${labels}} ${value}`);
      byName.set(metric, e);
    }
    const out: string[] = [];
    for (const [metric, e] of [...byName].sort(([a], [b]) => a.localeCompare(b))) {
      out.push(`# TYPE ${metric} ${e.kind}`);
      out.push(...e.samples);
    }
    return out.length ? out.join("\n") + "\n" : "";
  }
}

function sanitize(s: string): string {
  return s.replace(/[^a-zA-Z0-9_]/g, "_");
}

function promName(name: string): { metric: string; labels: string } {
  let m = /^http\.([^.]+)\.(.+)$/.exec(name);
  if (m) return { metric: `envoy_http_${sanitize(m[2])}`, labels: `envoy_http_conn_manager_prefix="${m[1]}"` };
  m = /^cluster\.([^.]+)\.(.+)$/.exec(name);
  if (m) return { metric: `envoy_cluster_${sanitize(m[2])}`, labels: `envoy_cluster_name="${m[1]}"` };
  return { metric: `envoy_${sanitize(name)}`, labels: "" };
}

/** Parse Envoy /stats text ("name: value" per line) into a map; histogram lines are skipped. */
export function parseStatsText(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    const i = line.lastIndexOf(": ");
    if (i <= 0) continue;
    const v = Number(line.slice(i + 2).trim());
    if (Number.isFinite(v)) out.set(line.slice(0, i).trim(), v);
  }
  return out;
}
