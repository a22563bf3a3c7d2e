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
  envoyApi: "envoyproxy/data-plane-api f8b75d1efa92bbf534596a013d9ca5873f79dd30",
  summary: "Envoy v3 API as of data-plane-api f8b75d1e (grpc-node submodule, set 2024-09-19: between Envoy 1.31 and 1.32)",
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
 * { root, source, loaded, failed: [{ file, error }], overlay } — failed lists proto files of the package that
 * cannot be loaded (their imports are not shipped); types only they define are "not in the pinned protos".
 */
export function loadApi() {
  if (cached) return cached;
  const deps = join(XDS_PKG, "deps");
  const dirs = ["envoy-api", "xds", "protoc-gen-validate", "googleapis"].map((d) => join(deps, d));
  dirs.push(PROTOBUFJS);
  const root = new protobuf.Root();
  root.resolvePath = (origin, target) => {
    for (const d of dirs) {
      const p = join(d, target);
      if (existsSync(p)) return p;
    }
    return target; // reported as a load failure of the importing file
  };
  // v2 packages are left out: Envoy no longer accepts them, and the package ships only a few of them.
  const files = [...listProtos(dirs[0]).map((f) => relative(dirs[0], f)), ...listProtos(dirs[1]).map((f) => relative(dirs[1], f))]
    .filter((f) => !/^envoy\/(.*\/)?v2(alpha\d*)?\//.test(f));
  const failed = [];
  for (const file of files) {
    try {
      root.loadSync(file, { keepCase: true });
    } catch (e) {
      failed.push({ file, error: String(e.message).split("\n")[0] });
    }
  }
  root.resolveAll();
  applyOverlay(root);
  cached = { root, source: API_SOURCE, loaded: files.length - failed.length, failed, overlay: OVERLAY };
  return cached;
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
    type.fieldsArray.forEach((f) => f.resolve());
  }
  for (const f of OVERLAY.fields ?? []) {
    const type = root.lookupType(f.message);
    if (type.fields[f.name]) continue; // the pinned protos have it after all
    const field = new protobuf.Field(f.name, f.id, `.${f.type}`);
    field.overlay = f; // the validator notes every use
    type.add(field);
    field.resolve();
  }
}
