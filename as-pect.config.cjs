// as-pect 5 on AssemblyScript 0.17 (toolchain.md §9): specs cover the pure core only, so no host imports.
module.exports = {
  include: ["test/unit/**/*.spec.ts"],
  add: [],
  flags: { "--runtime": ["full"], "--target": ["aspect"] },
  disclude: [/node_modules/],
  imports(memory, createImports, instantiateSync, binary) {
    return instantiateSync(binary, createImports({}));
  },
  outputBinary: false,
};
