import { readFileSync } from "node:fs";
import { Arm, filterConfig } from "./lib/host.ts";
const wasm = readFileSync("/tmp/named.wasm");
const a = new Arm("filter", wasm, filterConfig({ metrics_path: "/websocket/metrics", health_path: "/websocket/health" }), 1);
a.rate = 0;
const t0 = performance.now();
let n = 0;
while (performance.now() - t0 < 8000) { for (let i = 0; i < 1000; i++) a.plain(0); n += 1000; }
console.log("plain", n, "ns/each", ((performance.now() - t0) * 1e6 / n).toFixed(0));
