// Would Envoy 1.30–1.36 (V8) link and start this proxy-wasm module? A static check driven by the table in
// envoy-abi.json; nothing is instantiated.
import { readFileSync } from "node:fs";
import { readModule } from "./wasm-read.mjs";

export const TABLE = JSON.parse(readFileSync(new URL("./envoy-abi.json", import.meta.url), "utf8"));
const VERSIONS = TABLE.envoyVersions;

/** "1.33", "v1.33.2" → "1.33"; anything else → undefined. */
export function normalizeEnvoy(v) {
  const m = /^v?(\d+)\.(\d+)(?:\.\d+)?$/.exec(String(v));
  if (!m) return undefined;
  const s = `${m[1]}.${m[2]}`;
  return VERSIONS.includes(s) ? s : undefined;
}

const byVersion = (a, b) => VERSIONS.indexOf(a) - VERSIONS.indexOf(b);
const abiOk = (row, abi) => row.abi === "all" || abi === undefined || row.abi.includes(abi);

/**
 * Checks one module. bytes: Uint8Array. options.envoy: oldest Envoy the module must run on (default 1.30).
 * Returns { size, abi, imports, exports, findings: [{ severity: error|warning|note, code, name?, message }] }.
 */
export function checkModule(bytes, options = {}) {
  const envoy = options.envoy ?? VERSIONS[0];
  const findings = [];
  const add = (severity, code, message, extra = {}) => findings.push({ severity, code, message, ...extra });
  const result = { size: bytes.length, abi: undefined, imports: 0, exports: 0, findings };
  try {
    new WebAssembly.Module(bytes);
  } catch (e) {
    add("error", "invalid", `not a valid WebAssembly module: ${e.message}`);
    return result;
  }
  const mod = readModule(bytes);
  result.imports = mod.imports.length;
  result.exports = mod.exports.length;

  // ABI version: the first function export named like one of the three, in export order.
  const abiExport = mod.exports.find((e) => e.kind === "function" && TABLE.abiVersions.exports.includes(e.name));
  if (abiExport) result.abi = abiExport.name.replace("proxy_abi_version_", "").replaceAll("_", ".");
  else add("error", "abi-version", `no ABI version export (${TABLE.abiVersions.exports.join(", ")}): Envoy fails with "Missing or unknown Proxy-Wasm ABI version"`);
  const abi = result.abi;

  for (const imp of mod.imports) {
    const id = `${imp.module}.${imp.name}`;
    if (imp.kind === "global") {
      add("error", "imported-global", `imported global ${id}: Envoy does not link imported globals ("missing import")`, { name: id });
      continue;
    }
    if (imp.kind !== "function") {
      add("note", "imported-" + imp.kind, `imported ${imp.kind} ${id}: the host creates it`, { name: id });
      continue;
    }
    if (TABLE.wasiModules.names.includes(imp.module)) {
      const row = TABLE.wasi.find((w) => w.name === imp.name);
      if (!row) {
        add("error", "missing-import", `${id} is not a WASI function Envoy 1.30–1.36 provides: "Failed to load Wasm module due to a missing import"`, { name: id });
      } else {
        checkSig(add, id, row, imp);
        if (byVersion(row.since, envoy) > 0) {
          add("warning", "envoy-version", `${id} needs Envoy ${row.since}+; with --envoy ${envoy} it fails to link on Envoy ${envoy}–${VERSIONS[VERSIONS.indexOf(row.since) - 1]}`, { name: id, since: row.since });
        } else if (row.since !== VERSIONS[0]) {
          add("note", "envoy-version", `${id} needs Envoy ${row.since}+`, { name: id, since: row.since });
        }
      }
      continue;
    }
    const rows = TABLE.imports.filter((r) => r.module === imp.module && r.name === imp.name);
    const row = rows.find((r) => abiOk(r, abi));
    if (!row) {
      const known = TABLE.knownMissing.find((k) => k.module === imp.module && k.name === imp.name);
      let why = "Envoy does not provide it";
      if (rows.length > 0) why = `Envoy registers it only for ABI ${rows[0].abi.join("/")}, this module is ABI ${abi}`;
      if (known) why += `; ${known.hint}`;
      add("error", "missing-import", `${id}: ${why} ("Failed to load Wasm module due to a missing import")`, { name: id });
      continue;
    }
    checkSig(add, id, row, imp);
  }

  // Allocator: malloc first, then proxy_on_memory_allocate.
  const fn = (name) => mod.exports.find((e) => e.kind === "function" && e.name === name);
  const alloc = TABLE.allocators.names.map(fn).find(Boolean);
  if (!alloc) {
    add("error", "allocator", `no allocator export (${TABLE.allocators.names.join(" or ")}): "Wasm module is missing malloc function."`);
  } else if (alloc.sig !== TABLE.allocators.sig) {
    add("error", "export-signature", `Bad function signature for: ${alloc.name} (want ${TABLE.allocators.sig}, got ${alloc.sig})`, { name: alloc.name });
  }
  if (!mod.exports.some((e) => e.kind === "memory") && !mod.imports.some((i) => i.kind === "memory")) {
    add("error", "memory", "no exported memory: Envoy's V8 host keeps a null memory and crashes on the first host call that touches module memory");
  }

  // Callbacks and entry points Envoy looks up: a present export with another signature fails the load.
  const hasInitialize = Boolean(fn("_initialize"));
  for (const row of TABLE.exports) {
    if (!abiOk(row, abi) || (abi === undefined && row.abi !== "all")) continue; // no ABI: Envoy stops earlier
    if (row.when === "_initialize" && !hasInitialize) continue;
    if (row.when === "!_initialize" && hasInitialize) continue;
    const e = fn(row.name);
    if (e && e.sig !== row.sig) {
      add("error", "export-signature", `Bad function signature for: ${row.name} (want ${row.sig}, got ${e.sig})`, { name: row.name });
    }
  }
  return result;
}

function checkSig(add, id, row, imp) {
  if (imp.sig !== row.sig) {
    add("error", "import-signature", `${id}: import type mismatch, want ${row.sig} (Envoy), got ${imp.sig} (module)`, { name: id });
  }
}

/** One summary line, then one indented line per finding. */
export function formatReport(file, r) {
  const count = (s) => r.findings.filter((f) => f.severity === s).length;
  const errors = count("error");
  const warnings = count("warning");
  const facts = `ABI ${r.abi ?? "?"}, ${r.imports} imports, ${r.exports} exports, ${r.size} bytes`;
  const plural = (n, w) => `${n} ${w}${n === 1 ? "" : "s"}`;
  const head = errors > 0 ? `${file}: ${plural(errors, "error")}, ${plural(warnings, "warning")} (${facts})`
    : warnings > 0 ? `${file}: OK with ${plural(warnings, "warning")} (${facts})` : `${file}: OK (${facts})`;
  return [head, ...r.findings.map((f) => `  ${f.severity}: ${f.message}`)].join("\n");
}
