#!/usr/bin/env node
// make check-abi: the local and fleet modules differ only by fleet mode (docs/fleet.md §9). The local module must not import
// proxy_http_call nor export proxy_on_http_call_response (a structural proof that no fleet code leaked into it);
// the fleet module must have both. The lean module (optional third argument) is the local module without the body
// callbacks: it must export neither proxy_on_request_body nor proxy_on_response_body (so Envoy never enters it for body
// data), every other export of the local module, and no HTTP call either.
// Usage: node tools/checks/local-module.mjs LOCAL.wasm FLEET.wasm [LEAN.wasm]
import { readFileSync } from "node:fs";
import { readModule } from "./abi/wasm-read.mjs";

function names(file) {
  const m = readModule(new Uint8Array(readFileSync(file)));
  return {
    imports: new Set(m.imports.map((i) => i.name)),
    exports: new Set(m.exports.map((e) => e.name)),
  };
}

const [local, fleet, lean] = process.argv.slice(2);
if (!local || !fleet) {
  console.error("usage: local-module.mjs LOCAL.wasm FLEET.wasm [LEAN.wasm]");
  process.exit(2);
}
const l = names(local);
const f = names(fleet);
const errors = [];
if (l.imports.has("proxy_http_call")) errors.push(`${local} imports proxy_http_call (fleet code in the local module)`);
if (l.exports.has("proxy_on_http_call_response")) errors.push(`${local} exports proxy_on_http_call_response`);
if (!f.imports.has("proxy_http_call")) errors.push(`${fleet} does not import proxy_http_call`);
if (!f.exports.has("proxy_on_http_call_response")) errors.push(`${fleet} does not export proxy_on_http_call_response`);
for (const e of l.exports) if (!f.exports.has(e)) errors.push(`${fleet} lacks the local module's export ${e}`);
const BODY = ["proxy_on_request_body", "proxy_on_response_body"];
if (lean) {
  const n = names(lean);
  for (const e of BODY) if (n.exports.has(e)) errors.push(`${lean} exports ${e} (the lean module must have no body callbacks)`);
  for (const e of l.exports) if (!BODY.includes(e) && !n.exports.has(e)) errors.push(`${lean} lacks the local module's export ${e}`);
  if (n.imports.has("proxy_http_call")) errors.push(`${lean} imports proxy_http_call (fleet code in the lean module)`);
  if (n.exports.has("proxy_on_http_call_response")) errors.push(`${lean} exports proxy_on_http_call_response`);
}
if (errors.length) {
  for (const e of errors) console.error("check-abi: " + e);
  process.exit(1);
}
console.log(`check-abi: ${local} has no HTTP calls; ${fleet} has proxy_http_call and proxy_on_http_call_response` +
  (lean ? `; ${lean} has no body callbacks and no HTTP calls` : ""));
