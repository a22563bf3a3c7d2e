#!/usr/bin/env node
// make check-abi: the two modules differ only by fleet mode (docs/fleet.md §9). The local module must not import
// proxy_http_call nor export proxy_on_http_call_response (a structural proof that no fleet code leaked into it);
// the fleet module must have both.
// Usage: node tools/checks/local-module.mjs LOCAL.wasm FLEET.wasm
import { readFileSync } from "node:fs";
import { readModule } from "./abi/wasm-read.mjs";

function names(file) {
  const m = readModule(new Uint8Array(readFileSync(file)));
  return {
    imports: new Set(m.imports.map((i) => i.name)),
    exports: new Set(m.exports.map((e) => e.name)),
  };
}

const [local, fleet] = process.argv.slice(2);
if (!local || !fleet) {
  console.error("usage: local-module.mjs LOCAL.wasm FLEET.wasm");
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
if (errors.length) {
  for (const e of errors) console.error("check-abi: " + e);
  process.exit(1);
}
console.log(`check-abi: ${local} has no HTTP calls; ${fleet} has proxy_http_call and proxy_on_http_call_response`);
