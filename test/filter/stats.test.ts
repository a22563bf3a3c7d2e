// Behaviour 8: stats from one table — every documented name exists at configure with value 0, the gauge is right
// across workers, the duration histogram gets samples, and /stats/prometheus renders the tags as labels.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { G, ROOT, H101, conn, finishReply, isContinue, makeEnv, ok, open, upgradeHeaders } from "./support.ts";

const HISTOGRAMS = new Set<string>();

/** Stat names of the docs/contracts.md table, with `<a|b>` alternatives expanded and `<d>` = the direction list. */
function contractNames(): string[] {
  const doc = readFileSync(join(ROOT, "docs/contracts.md"), "utf8");
  const out: string[] = [];
  let lastAlts: string[] = [];
  for (const m of doc.matchAll(/^\| `(ws_governor\.[^`]+)` \| (counter|gauge|histogram) \|/gm)) {
    if (m[2] === "histogram") HISTOGRAMS.add(m[1].replace(/\.[^.]*<.*$/, ""));
    const name = m[1].replace(/\\\|/g, "|");
    const alt = /<([^>]+)>/.exec(name);
    if (!alt) { out.push(name); continue; }
    let alts = alt[1] === "same" ? lastAlts : alt[1] === "d" ? ["downstream", "upstream"] : alt[1].split("|");
    if (alt[1] !== "same" && alt[1] !== "d") lastAlts = alts;
    for (const a of alts) out.push(name.replace(alt[0], a));
  }
  return out;
}

test("B8 stats: every name of docs/contracts.md exists after configure, value 0, with its type", () => {
  const names = contractNames();
  ok(names.length >= 30, `only ${names.length} names parsed from docs/contracts.md`);
  const e = makeEnv({ concurrency: 2 });
  try {
    const text = e.proc.stats.renderText();
    for (const n of names) {
      const full = "wasmcustom." + n;
      assert.equal(e.proc.stats.get(full), 0, `${full} defined with value 0`);
      if ([...HISTOGRAMS].some((h) => n === h || n.startsWith(h + "."))) assert.match(text, new RegExp(`^${full.replace(/\./g, "\\.")}: No recorded values$`, "m"));
      else assert.match(text, new RegExp(`^${full.replace(/\./g, "\\.")}: 0$`, "m"));
    }
    ok(names.includes("ws_governor.rejected_total.reason.pod_full") && names.includes("ws_governor.frame_closes_total.code.1009"), "expansion");
    // every ws_governor stat the module defines is documented (or is the corrupt-values counter)
    const defined = [...text.matchAll(/^wasmcustom\.(ws_governor\.[^:]+):/gm)].map((m) => m[1]);
    const undocumented = defined.filter((d) => !names.includes(d));
    assert.deepEqual(undocumented, ["ws_governor.corrupt_values_total"], "stats missing from docs/contracts.md");
  } finally {
    e.close();
  }
});

test("B8 stats: active gauge right across workers, duration histogram samples, Prometheus labels from stats_tags", () => {
  const e = makeEnv({ concurrency: 3, config: { rate_limit: { requests: 5, window_seconds: 60 }, max_connections_per_pod: 4 } });
  try {
    const conns = [open(e.h, 0), open(e.h, 1), open(e.h, 2), open(e.h, 1)];
    for (const c of conns) ok(c.admitted, "admitted");
    assert.equal(e.stat("active_connections"), 4);
    const full = open(e.h, 2);
    finishReply(full.s);
    const limited = open(e.h, 0);
    finishReply(limited.s);
    e.proc.advance(2500);
    conns[0].s.complete();
    conns[1].s.reset("x");
    assert.equal(e.stat("active_connections"), 2);
    const samples = e.proc.stats.samples(G + "connection_duration_ms")!;
    assert.deepEqual(samples, [2500, 2500], "duration in ms of each closed connection");
    const prom = e.proc.stats.renderPrometheus();
    const line = (re: string) => ok(new RegExp(`^${re}$`, "m").test(prom), `no line /${re}/ in\n${prom.split("\n").filter((l) => l.includes("ws_governor")).join("\n")}`);
    line('ws_governor_rejected_total\\{reason="pod_full"\\} 1');
    line('ws_governor_rejected_total\\{reason="rate_limited"\\} 1');
    line('ws_governor_rejected_total\\{reason="draining"\\} 0');
    line('ws_governor_shadow_rejected_total\\{reason="client_full"\\} 0');
    line('ws_governor_contention_decisions_total\\{decision="deny"\\} 0');
    line('ws_governor_frames_total\\{direction="upstream"\\} 0');
    line('ws_governor_control_frames_total\\{kind="ping"\\} 0');
    line('ws_governor_frame_closes_total\\{code="1009"\\} 0');
    line("ws_governor_active_connections 2");
    line("ws_governor_accepted_total 4");
    line("ws_governor_released_total 2");
    line("# TYPE ws_governor_connection_duration_ms histogram");
    line("ws_governor_connection_duration_ms_count 2");
    line("# TYPE ws_governor_rejected_total counter");
    for (const c of conns.slice(2)) c.s.complete();
    assert.equal(e.stat("active_connections"), 0);
  } finally {
    e.close();
  }
});

test("B10 lifecycle lines at debug only: built when Envoy's wasm logger is at debug (ABI 0.2.1 proxy_get_log_level)", () => {
  for (const level of ["info", "debug"] as const) {
    const e = makeEnv({ concurrency: 1, config: { rate_limit: null }, process: { logLevel: level } });
    try {
      const s = e.h.newStream(0, conn());
      ok(isContinue(s.decodeHeaders(upgradeHeaders(), false)), "admitted");
      ok(isContinue(s.encodeHeaders(H101, false)), "101");
      s.complete();
      const lifecycle = e.logs.filter((l) => /^ws_governor: (upgraded|closed) stream=/.test(l.message));
      assert.equal(lifecycle.length, level === "debug" ? 2 : 0, `lifecycle lines at ${level}`);
      if (level === "debug") ok(lifecycle.every((l) => l.level === "debug"), "logged at debug");
    } finally {
      e.close();
    }
  }
});
