// dashboards/ws-governor.json: a loadable Grafana dashboard whose PromQL names only metrics that exist per
// docs/contracts.md (Envoy stats as Prometheus names, and the filter-served endpoint's names).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { ROOT, contractPrometheusMetrics, isObject } from "./support.ts";
import type { JsonObject } from "./support.ts";

const dashboard = JSON.parse(readFileSync(join(ROOT, "dashboards/ws-governor.json"), "utf8")) as JsonObject;

const KEYWORDS = new Set(["by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset", "inf", "nan"]);
const GROUPING = /\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g;

/** Metric names referenced by a PromQL expression (a small tokenizer, enough for dashboard queries). */
function metricNames(expr: string): string[] {
  const s = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, '""')   // string literals
    .replace(/\{[^}]*\}/g, " ")                                // label matchers
    .replace(/\[[^\]]*\]/g, " ")                               // range selectors and subqueries
    .replace(GROUPING, " ");                                   // grouping label lists
  const out: string[] = [];
  for (const m of s.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*/g)) {
    const rest = s.slice(m.index + m[0].length);
    const before = s[m.index - 1] ?? " ";
    if (/^\s*\(/.test(rest)) continue;                         // function or aggregation
    if (/[0-9.$]/.test(before)) continue;                      // part of a number (1e3) or a variable
    if (KEYWORDS.has(m[0].toLowerCase())) continue;
    out.push(m[0]);
  }
  return out;
}

/** Label names used for grouping (`by (...)`) in an expression. */
function groupingLabels(expr: string): string[] {
  return [...expr.matchAll(GROUPING)].flatMap((m) => m[2]!.split(",").map((x) => x.trim()).filter(Boolean));
}

function allTargets(): Array<{ panel: string; expr: string }> {
  const out: Array<{ panel: string; expr: string }> = [];
  const visit = (panels: unknown) => {
    for (const p of (panels ?? []) as JsonObject[]) {
      for (const t of (p.targets ?? []) as JsonObject[]) out.push({ panel: String(p.title), expr: String(t.expr) });
      visit(p.panels);
    }
  };
  visit(dashboard.panels);
  return out;
}

function allowedMetrics(): Set<string> {
  const { envoy, endpoint } = contractPrometheusMetrics();
  const allowed = new Set(endpoint);
  for (const [name, type] of envoy) {
    if (type === "histogram") for (const suffix of ["_bucket", "_sum", "_count"]) allowed.add(name + suffix);
    else allowed.add(name);
  }
  return allowed;
}

test("dashboard: the metric-name parser finds metrics and skips functions, labels and variables", () => {
  assert.deepEqual(metricNames('histogram_quantile(0.99, sum by (le) (rate(a_bucket{pod=~"$pod"}[$__rate_interval])))'), ["a_bucket"]);
  assert.deepEqual(metricNames("sum(rate(x_total[5m])) / sum without (pod) (y) > bool 1e3"), ["x_total", "y"]);
});

test("dashboard: contracts.md yields the metric list the check relies on", () => {
  const { envoy, endpoint } = contractPrometheusMetrics();
  assert.equal(envoy.get("ws_governor_rejected_total"), "counter");
  assert.equal(envoy.get("ws_governor_connection_duration_ms"), "histogram");
  assert.equal(envoy.size, 20);
  assert.deepEqual([...endpoint].sort(),
    ["websocket_connection_rate_limited_total", "websocket_connections_active_total", "websocket_connections_rejected_total"]);
});

test("dashboard: every PromQL expression names only metrics listed in docs/contracts.md", () => {
  const allowed = allowedMetrics();
  const targets = allTargets();
  assert.ok(targets.length >= 15, `only ${targets.length} queries`);
  const used = new Set<string>();
  for (const { panel, expr } of targets) {
    const names = metricNames(expr);
    assert.ok(names.length > 0, `${panel}: no metric in ${expr}`);
    for (const n of names) {
      assert.ok(allowed.has(n), `${panel}: ${n} is not a metric of docs/contracts.md (${expr})`);
      used.add(n);
    }
  }
  for (const required of ["websocket_connections_active_total", "ws_governor_rejected_total", "ws_governor_messages_total",
    "ws_governor_bytes_total", "ws_governor_connection_duration_ms_bucket"]) {
    assert.ok(used.has(required), `dashboard does not chart ${required}`);
  }
  // template variable queries too
  for (const v of (dashboard.templating as JsonObject).list as JsonObject[]) {
    if (v.type !== "query") continue;
    const q = String(isObject(v.query) ? v.query.query : v.query);
    const inner = /label_values\((.*),\s*\w+\)$/.exec(q)?.[1] ?? q;
    for (const n of metricNames(inner)) assert.ok(allowed.has(n), `variable ${String(v.name)}: ${n}`);
  }
});

test("dashboard: grouping labels are the contract's stats tags or Prometheus target labels", () => {
  const tags = new Set(["reason", "decision", "direction", "kind", "code", "le", "pod", "namespace", "instance", "job"]);
  for (const { panel, expr } of allTargets()) {
    for (const l of groupingLabels(expr)) assert.ok(tags.has(l), `${panel}: groups by unknown label ${l}`);
  }
});

test("dashboard: Grafana structure (uid, unique panel ids, datasource variable, grid positions)", () => {
  assert.equal(dashboard.uid, "ws-governor");
  assert.equal(typeof dashboard.schemaVersion, "number");
  const ids = new Set<number>();
  const visit = (panels: unknown) => {
    for (const p of (panels ?? []) as JsonObject[]) {
      assert.ok(!ids.has(Number(p.id)), `duplicate panel id ${String(p.id)}`);
      ids.add(Number(p.id));
      const g = p.gridPos as JsonObject;
      assert.ok(Number(g.x) + Number(g.w) <= 24, `${String(p.title)}: wider than the grid`);
      if (p.type !== "row") assert.deepEqual(p.datasource, { type: "prometheus", uid: "${datasource}" }, String(p.title));
      visit(p.panels);
    }
  };
  visit(dashboard.panels);
  const vars = ((dashboard.templating as JsonObject).list as JsonObject[]).map((v) => v.name);
  assert.deepEqual(vars, ["datasource", "namespace", "pod"]);
});
