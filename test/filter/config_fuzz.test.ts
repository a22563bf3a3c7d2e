// Bounded fuzzing of on_configure in the release module: mutated valid configurations and random text must never
// trap the VM. Each input either loads, or is rejected with exactly one critical "invalid configuration" line.
import { test } from "node:test";
import assert from "node:assert/strict";
import { loadFailure, rng, ok } from "./support.ts";

const BASE = JSON.stringify({
  mode: "upstream", key_prefix: "wsg", enforce: false, failure_mode: "open", cas_max_attempts: 8,
  max_connections_per_pod: 100, max_connections_per_client: 5, client_key: { source: "header", header: "x-u" },
  client_buckets: 64, rate_limit: { requests: 50, window_seconds: 60, burst: 10,
    key: { source: "metadata", namespace: "jwt", path: ["payload", "sub"] }, buckets: 32 },
  max_pods: 16, tick_ms: 500, lease_ticks: 4, metrics_path: "/m", health_path: "/h",
  endpoint_allow: ["10.0.0.0/8", "::1"], draining: false,
  frames: { enabled: true, max_frame_bytes: 1e6, max_message_bytes: 2000000, messages_per_second: 10, message_burst: 20 },
});
const ALPHABET = "{}[]:,\"\\ 0123456789.eE-+truefalsn\u0000\u00e9\u{1F600}abcxyz/u";
const CASES = 400;

test(`config fuzz: ${CASES} mutated and random configurations never trap; each loads or is rejected with one critical line`, () => {
  const rand = rng(0xc0ffee);
  const pick = (n: number) => Math.floor(rand() * n);
  const chars = [...ALPHABET];
  let loaded = 0;
  let refused = 0;
  for (let i = 0; i < CASES; i++) {
    let text: string;
    if (i % 4 === 3) {
      text = Array.from({ length: pick(40) }, () => chars[pick(chars.length)]).join("");
    } else {
      text = BASE;
      for (let k = 1 + pick(4); k > 0; k--) {
        const at = pick(text.length + 1);
        const ch = chars[pick(chars.length)];
        const op = pick(3);
        text = op === 0 ? text.slice(0, at) + ch + text.slice(at)
          : op === 1 ? text.slice(0, at) + text.slice(at + 1)
          : text.slice(0, at) + ch + text.slice(at + 1);
      }
    }
    const { error, logs } = loadFailure(text);
    const trapped = logs.filter((l) => /failed: |abort/.test(l.message));
    assert.deepEqual(trapped.map((l) => l.message), [], `no trap for ${JSON.stringify(text)}`);
    if (error === undefined) { loaded++; continue; }
    refused++;
    const critical = logs.filter((l) => l.level === "critical");
    assert.equal(critical.length, 1, `one critical line for ${JSON.stringify(text)}: ${critical.map((l) => l.message).join(" | ")}`);
    assert.match(critical[0].message, /^ws_governor: invalid configuration: .+: ./s);
  }
  ok(refused > CASES / 2, `most mutations are refused (${refused})`);
  ok(loaded > 0, `some mutations still load (${loaded})`);
  console.log(`# config fuzz: ${CASES} inputs, ${loaded} loaded, ${refused} refused with one critical line, 0 traps`);
});
