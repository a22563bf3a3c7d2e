// End-to-end: every scenario in scenarios.ts against every selected target.
//   E2E_TARGETS unset: emulated, plus docker and binary when available (else skipped with the printed reason)
//   E2E_TARGETS=emulated | docker | binary | emulated,docker,…
//   (fake = harness self-check: the proxy with a TypeScript stand-in for host + filter, not the product)
// An unavailable target is reported as skipped with the reason — unless it was requested explicitly in E2E_TARGETS,
// then it is a failure (so `make test-docker` cannot pass by skipping everything).
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { scenarios, TICK_MS } from "./scenarios.ts";
import { binaryTarget } from "./targets/binary.ts";
import { dockerTarget } from "./targets/docker.ts";
import { emulatedTarget, fakeTarget } from "./targets/emulated.ts";
import { basePluginConfig, patchConfig } from "./targets/render.ts";
import { DeployError, type Target } from "./targets/types.ts";

const all: Record<string, Target> = { emulated: emulatedTarget, docker: dockerTarget, binary: binaryTarget, fake: fakeTarget };
const explicit = process.env.E2E_TARGETS !== undefined && process.env.E2E_TARGETS.trim() !== "";
const names = (explicit ? process.env.E2E_TARGETS! : "emulated,docker,binary").split(",").map((s) => s.trim()).filter(Boolean);
const only = process.env.E2E_SCENARIO; // substring filter on scenario names

for (const n of names) if (!all[n]) throw new Error(`E2E_TARGETS: unknown target ${n} (known: ${Object.keys(all).join(", ")})`);

const unavailable = new Map<string, string | undefined>();
for (const n of names) unavailable.set(n, await all[n].unavailable());

for (const n of names) {
  const target = all[n];
  const reason = unavailable.get(n);
  describe(`e2e [${n}]`, () => {
    if (reason) {
      console.log(`# e2e target ${n} unavailable: ${reason}`);
      if (explicit) test(`target ${n} is available`, () => assert.fail(`requested in E2E_TARGETS but unavailable: ${reason}`));
    }
    for (const s of scenarios) {
      if (only && !s.name.includes(only)) continue;
      test(s.name, { skip: reason ? `${n} unavailable: ${reason}` : false, timeout: 120_000 }, async (t) => {
        const pluginConfig = patchConfig(basePluginConfig(), { tick_ms: TICK_MS, ...s.config });
        if (s.expectLoadFailure) {
          let deployed;
          try {
            deployed = await target.deploy({ pluginConfig, module: s.module });
          } catch (e) {
            const text = `${(e as Error).message}\n${e instanceof DeployError ? e.logs : ""}`;
            assert.match(text, s.expectLoadFailure, "the load failure names the problem");
            return;
          }
          await deployed.stop();
          assert.fail("the deployment started although the configuration is invalid");
        }
        const d = await target.deploy({ pluginConfig, module: s.module });
        try {
          await s.run?.(d);
        } catch (e) {
          t.diagnostic(`--- ${n} logs (tail) ---\n${(await d.logs()).split("\n").slice(-80).join("\n")}`);
          throw e;
        } finally {
          await d.stop();
        }
      });
    }
  });
}
