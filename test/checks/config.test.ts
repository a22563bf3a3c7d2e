// tools/checks/check-config.mjs: the shipped Envoy configs (envoy/, and the Envoy objects inside k8s/) pass;
// every file in test/checks/broken-configs fails with exactly the errors its "# expect: PATH :: TEXT" lines name.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";

const ROOT = resolve(fileURLToPath(new URL("../..", import.meta.url)));
const CLI = join(ROOT, "tools/checks/check-config.mjs");
const BROKEN = join(ROOT, "test/checks/broken-configs");
const TMP = mkdtempSync(join(tmpdir(), "wsg-check-config-"));
after(() => rmSync(TMP, { recursive: true, force: true }));

interface Finding { severity: string; path: string; line?: number; code: string; message: string; rule?: string }
interface Target { label: string; type: string; partial: boolean; findings: Finding[] }
interface FileResult { file: string; targets: Target[]; skipped: { label: string }[]; problems: Finding[] }
interface Report { ok: boolean; api: { package: string; envoyApi: string; files: number }; files: FileResult[] }

function run(args: string[]): { code: number; report: Report; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, "--json", ...args], { cwd: ROOT, encoding: "utf8", maxBuffer: 64 << 20 });
  let report: Report;
  try {
    report = JSON.parse(r.stdout) as Report;
  } catch {
    assert.fail(`check-config printed no JSON (exit ${r.status}):\n${r.stdout}${r.stderr}`);
  }
  return { code: r.status ?? -1, report, stderr: r.stderr };
}

const errorsOf = (f: FileResult): Finding[] =>
  [...f.problems, ...f.targets.flatMap((t) => t.findings)].filter((x) => x.severity === "error");

test("the shipped configs in envoy/ and k8s/ pass, and each Envoy object in them is found", () => {
  const { code, report } = run(["envoy", "k8s"]);
  const errors = report.files.flatMap((f) => errorsOf(f).map((e) => `${f.file}: ${e.path}: ${e.message}`));
  assert.deepEqual(errors, []);
  assert.equal(code, 0);
  const checked = report.files.flatMap((f) => f.targets.map((t) => `${t.label} as ${t.type}`)).sort();
  assert.deepEqual(checked, [
    "envoy/envoy-fleet.yaml as envoy.config.bootstrap.v3.Bootstrap",
    "envoy/envoy-gateway.yaml as envoy.config.bootstrap.v3.Bootstrap",
    "envoy/envoy-sidecar.yaml as envoy.config.bootstrap.v3.Bootstrap",
    "envoy/envoy.yaml as envoy.config.bootstrap.v3.Bootstrap",
    'k8s/base/stats-bootstrap.yaml#0 data["custom_bootstrap.json"] as envoy.config.bootstrap.v3.Bootstrap',
    "k8s/envoyfilter/envoyfilter.yaml#0 spec.configPatches[0].patch.value as envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter",
    "k8s/fleet/envoyfilter-etcd-cluster.yaml#0 spec.configPatches[0].patch.value as envoy.config.cluster.v3.Cluster",
    "k8s/gateway/envoyfilter-gateway.yaml#0 spec.configPatches[0].patch.value as envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter",
    'k8s/gateway/stats-bootstrap.yaml#0 data["custom_bootstrap.json"] as envoy.config.bootstrap.v3.Bootstrap',
  ]);
});

const broken = readdirSync(BROKEN).filter((n) => n.endsWith(".yaml")).sort();

test("there is a broken config for every kind of mistake", () => {
  const prefixes = ["unknown-field", "wrong-type", "unknown-any-type", "bad-enum", "bad-duration", "negative-duration",
    "pgv-message-required", "pgv-string-min-len", "pgv-string-min-bytes", "pgv-uint32-lte", "pgv-uint32-gte",
    "pgv-repeated-min-items", "pgv-oneof-required", "pgv-duration-gt", "pgv-enum-defined-only", "oneof-two-members",
    "envoyfilter-", "configmap-bootstrap"];
  for (const p of prefixes) assert.ok(broken.some((n) => n.startsWith(p)), `no broken config ${p}*.yaml`);
});

// One checker run per --type (a run loads the protos once), then one test per file; a file "fails" (1) when the
// checker reports errors for it. The CLI's own exit code is tested separately below.
const byType = new Map<string, string[]>();
const expectations = new Map<string, { path: string; text: string }[]>();
for (const name of broken) {
  const text = readFileSync(join(BROKEN, name), "utf8");
  const type = /^# type: (\S+)$/m.exec(text)?.[1] ?? "";
  byType.set(type, [...(byType.get(type) ?? []), name]);
  expectations.set(name, [...text.matchAll(/^# expect: (\S+) :: (.+)$/gm)].map((m) => ({ path: m[1]!, text: m[2]! })));
}
const results = new Map<string, { code: number; file: FileResult }>();
function resultFor(name: string): { code: number; file: FileResult } {
  if (results.size === 0) {
    for (const [type, names] of byType) {
      const { code, report } = run([...(type ? ["--type", type] : []), ...names.map((x) => relative(ROOT, join(BROKEN, x)))]);
      assert.equal(code, 1, `the run over ${names.join(", ")} must fail`);
      for (const f of report.files) results.set(f.file.split("/").pop()!, { code: errorsOf(f).length ? 1 : 0, file: f });
    }
  }
  const r = results.get(name);
  assert.ok(r, `${name}: not in the checker's report`);
  return r;
}

for (const name of broken) {
  test(`broken config ${name} fails with exactly its expected errors`, () => {
    const want = expectations.get(name)!;
    assert.ok(want.length > 0, `${name}: no "# expect: PATH :: TEXT" line`);
    const { code, file } = resultFor(name);
    assert.equal(code, 1);
    const got = errorsOf(file);
    for (const w of want) {
      assert.ok(got.some((e) => e.path === w.path && e.message.includes(w.text)),
        `${name}: expected an error at ${w.path} containing "${w.text}"; got:\n${got.map((e) => `  ${e.path}: ${e.message}`).join("\n")}`);
    }
    const unexpected = got.filter((e) => !want.some((w) => e.path === w.path && e.message.includes(w.text)));
    assert.deepEqual(unexpected.map((e) => `${e.path}: ${e.message}`), [], `${name}: errors not named by an expect line`);
  });
}

test("the broken configs fail the CLI with exit code 1; a missing file is a usage error (2)", () => {
  const r = spawnSync(process.execPath, [CLI, join(BROKEN, "bad-enum.yaml")], { encoding: "utf8" });
  assert.equal(r.status, 1, r.stdout);
  assert.match(r.stdout, /bad-enum\.yaml: FAIL \(envoy\.config\.bootstrap\.v3\.Bootstrap; 1 error,/);
  assert.match(r.stdout, /error static_resources\.clusters\[0\]\.lb_policy \(line \d+\): unknown value 'ROUND_ROBBIN'/);
  const missing = spawnSync(process.execPath, [CLI, join(TMP, "absent.yaml")], { encoding: "utf8" });
  assert.equal(missing.status, 2);
});

test("YAML is read as Envoy reads it: quoted scalars are strings, unquoted ones typed by yaml-cpp's rules", () => {
  const file = join(TMP, "typing.yaml");
  writeFileSync(file, [
    "node:",
    '  id: "123"          # quoted: a string',
    "  cluster: 1.5       # unquoted but not an int or bool: a string",
    "  locality: { region: off }   # unquoted off: a bool",
    "admin:",
    "  address: { socket_address: { address: 127.0.0.1, port_value: 0x2000 } }   # hex int",
    "stats_flush_interval: 5s",
    "!ignore anchors: &a { x: 1 }",
  ].join("\n"));
  const { code, report } = run([file]);
  const errors = errorsOf(report.files[0]!);
  assert.deepEqual(errors.map((e) => `${e.path}: ${e.message}`), ["node.locality.region: expected a string, got the bool off (YAML reads it unquoted as that; quote it)"]);
  assert.equal(code, 1);
});

test("the pinned API: Envoy commit named, Wasm and matcher messages present", () => {
  const file = join(TMP, "empty.yaml");
  writeFileSync(file, "{}\n");
  // An unknown --type is a usage error (exit 2, no JSON); these load and check as empty messages.
  let report: Report | undefined;
  for (const type of ["envoy.extensions.filters.http.wasm.v3.Wasm", "envoy.extensions.common.matching.v3.ExtensionWithMatcher"]) {
    const r = run(["--type", type, file]);
    assert.equal(r.report.files[0]?.targets[0]?.type, type, r.stderr);
    report = r.report;
  }
  assert.ok(report);
  assert.match(report.api.package, /^@grpc\/grpc-js-xds@\d+\.\d+\.\d+$/);
  assert.match(report.api.envoyApi, /data-plane-api f8b75d1efa92bbf534596a013d9ca5873f79dd30/);
  assert.ok(report.api.files > 300, `only ${report.api.files} proto files`);
});

test("the bootstraps the real-Envoy e2e targets write (envoy/envoy.yaml rendered, and unwrapped for the lean module) pass", async () => {
  const { renderBootstrap, basePluginConfig } = await import("../e2e/targets/render.ts");
  const files: string[] = [];
  for (const unwrap of [false, true]) {
    const doc = renderBootstrap({ pluginConfig: basePluginConfig(), listenerPort: 10001, adminPort: 9902,
      endpoints: [{ host: "127.0.0.1", port: 18080 }], wasmFilename: unwrap ? "/w/ws-governor-lean.wasm" : "/w/ws-governor.wasm", unwrap });
    const f = join(TMP, `e2e-${unwrap ? "lean" : "local"}.json`);
    writeFileSync(f, JSON.stringify(doc, null, 2));
    files.push(f);
  }
  const { code, report } = run(files);
  const errors = report.files.flatMap((f) => errorsOf(f).map((e) => `${f.file}: ${e.path}: ${e.message}`));
  assert.deepEqual(errors, []);
  assert.equal(code, 0);
  assert.equal(report.files.flatMap((f) => f.targets).length, 2, "both checked as bootstraps");
  const lean = JSON.parse(readFileSync(files[1], "utf8"));
  const hf = lean.static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters[0];
  assert.match(hf.typed_config["@type"], /extensions\.filters\.http\.wasm\.v3\.Wasm$/, "the lean deployment runs the filter unwrapped");
});
