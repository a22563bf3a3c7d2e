// Loads Envoy's v3 API protos from the pinned npm package @grpc/grpc-js-xds (deps/envoy-api, deps/xds,
// deps/protoc-gen-validate, deps/googleapis; google/protobuf/descriptor.proto from protobufjs itself) with
// protobufjs, then applies api-overlay.json: the few fields our configs use that Envoy added after the
// pinned API snapshot.
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative } from "node:path";
import protobuf from "protobufjs";

const require = createRequire(import.meta.url);
const XDS_PKG = dirname(require.resolve("@grpc/grpc-js-xds/package.json"));
const PROTOBUFJS = dirname(require.resolve("protobufjs/package.json"));
const OVERLAY = JSON.parse(readFileSync(new URL("./api-overlay.json", import.meta.url), "utf8"));

/** What the pinned package carries; see tools/checks/README.md ("Which Envoy API"). */
export const API_SOURCE = {
  package: `@grpc/grpc-js-xds@${JSON.parse(readFileSync(join(XDS_PKG, "package.json"), "utf8")).version}`,
  // grpc-node's packages/grpc-js-xds/deps/envoy-api submodule (tag @grpc/grpc-js-xds@1.14.0 and later); the
  // package's 488 envoy/ protos are byte-identical to that commit apart from CRLF line ends.
  envoyApi: "envoyproxy/data-plane-api f8b75d1efa92bbf534596a013d9ca5873f79dd30 = envoyproxy/envoy 799e3e2cb6b4 (2024-07-19)",
  summary: "Envoy v3 API of envoy 799e3e2cb6b4 (main, 2024-07-19, between v1.31.0 and v1.32.0; via data-plane-api f8b75d1e)",
};

function listProtos(dir, out = []) {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) listProtos(p, out);
    else if (name.endsWith(".proto")) out.push(p);
  }
  return out;
}

let cached;

/**
 * { root, source, files, missingImports, unresolved, overlay }: missingImports are imports the package does not
 * ship (OpenCensus, OpenTelemetry, Prometheus protos); unresolved the fields whose type needs one of them.
 */
export function loadApi() {
  if (cached) return cached;
  const deps = join(XDS_PKG, "deps");
  const dirs = ["envoy-api", "xds", "protoc-gen-validate", "googleapis"].map((d) => join(deps, d));
  dirs.push(PROTOBUFJS);
  const root = new protobuf.Root();
  const missingImports = new Set();
  root.resolvePath = (origin, target) => {
    for (const d of dirs) {
      const p = join(d, target);
      if (existsSync(p)) return p;
    }
    missingImports.add(target);
    return target; // fails to load; types that need it stay unresolved (see resolveEach)
  };
  // v2 packages are left out: Envoy no longer accepts them, and the package ships only a few of them.
  const files = [...listProtos(dirs[0]).map((f) => relative(dirs[0], f)), ...listProtos(dirs[1]).map((f) => relative(dirs[1], f))]
    .filter((f) => !/^envoy\/(.*\/)?v2(alpha\d*)?\//.test(f));
  for (const file of files) {
    try {
      root.loadSync(file, { keepCase: true });
    } catch {
      // a missing import (recorded above) or a type that needs one; resolveEach finds what is affected
    }
  }
  applyOverlay(root);
  const unresolved = [];
  resolveEach(root, unresolved);
  cached = { root, source: API_SOURCE, files: files.length, missingImports: [...missingImports].sort(), unresolved, overlay: OVERLAY };
  return cached;
}

/**
 * Resolves every field of every message one by one (protobufjs's resolveAll stops at the first failure and
 * may leave the rest unresolved). Fields whose type is not defined get `unresolvable` set.
 */
function resolveEach(ns, unresolved) {
  for (const n of ns.nestedArray) {
    if (n instanceof protobuf.Type) {
      for (const f of n.fieldsArray) {
        try {
          f.resolve();
        } catch (e) {
          if (f.type in protobuf.types.basic) continue; // a scalar: nothing to resolve (the error was its type's)
          f.unresolvable = String(e.message).split("\n")[0];
          unresolved.push(`${n.fullName.slice(1)}.${f.name}`);
        }
      }
    }
    if (n.nestedArray) resolveEach(n, unresolved);
  }
}

function applyOverlay(root) {
  for (const e of OVERLAY.enums ?? []) {
    const parent = root.lookup(e.parent);
    if (!parent.get(e.name)) parent.add(new protobuf.Enum(e.name, e.values));
  }
  for (const m of OVERLAY.messages ?? []) {
    const parent = root.lookup(m.parent);
    if (parent.get(m.name)) continue;
    const type = new protobuf.Type(m.name);
    for (const f of m.fields) type.add(new protobuf.Field(f.name, f.id, `.${f.type}`));
    parent.add(type);
  }
  for (const f of OVERLAY.fields ?? []) {
    const type = root.lookupType(f.message);
    if (type.fields[f.name]) continue; // the pinned protos have it after all
    const field = new protobuf.Field(f.name, f.id, `.${f.type}`);
    field.overlay = f; // the validator notes every use
    type.add(field);
  }
}
