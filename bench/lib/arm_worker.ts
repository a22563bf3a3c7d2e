// The worker side of IsolatedArm (isolated.ts): one Arm, commands answered through a shared slot.
import { parentPort, workerData } from "node:worker_threads";
import { Arm } from "./host.ts";
import { gc, nsPer } from "./measure.ts";

const { sab, name, wasm, config, rate } = workerData as
  { sab: SharedArrayBuffer; name: string; wasm: Uint8Array; config: string; rate: number };
const state = new Int32Array(sab, 0, 1);
const result = new Float64Array(sab, 8, 1);
const text = new Uint8Array(sab, 16);

function answer(v: number, err?: unknown): void {
  if (err === undefined) {
    result[0] = v;
    Atomics.store(state, 0, 1);
  } else {
    const b = new TextEncoder().encode(err instanceof Error ? err.message : String(err)).slice(0, text.length - 1);
    text.fill(0);
    text.set(b);
    Atomics.store(state, 0, 2);
  }
  Atomics.notify(state, 0);
}

let arm: Arm;
try {
  arm = new Arm(name, wasm, config, 1);
  arm.rate = rate;
  answer(0);
} catch (e) {
  answer(0, e);
}
parentPort!.postMessage("ready");

const ops: Record<string, () => void> = {
  lifecycle: () => { arm.lifecycle(0); },
  plain: () => { if (!arm.plain(0)) throw new Error("plain request not continued"); },
  post: () => { if (!arm.plain(0, true)) throw new Error("plain request with a body not continued"); },
  skipped: () => { arm.skipped(0); },
  message: () => { arm.message(0); },
};

parentPort!.on("message", (m: { cmd: string; op?: string; n?: number; ms?: number; level?: number }) => {
  try {
    const fn = ops[m.op ?? "lifecycle"];
    switch (m.cmd) {
      case "warm": { // bounded in count and in time
        const until = performance.now() + (m.ms ?? 0);
        for (let i = 0; i < m.n! && (i < 200 || performance.now() < until); i++) fn();
        return answer(0);
      }
      case "batch": // no forced GC here: each arm has a heap of its own, and a full GC with no stream open let V8
        // drop the type feedback of the emulator's stream objects, making the next batch slower (level 0 only)
        return answer(nsPer(fn, m.n!));
      case "hold": {
        const got = arm.holdOpen(0, m.level!, performance.now() + m.ms!);
        gc(); // the garbage of opening the streams is not billed to the first batch
        return answer(got);
      }
      case "close":
        arm.closeAll(0);
        return answer(0);
      case "failed":
        return answer(arm.failed() ? 1 : 0);
      default:
        throw new Error(`unknown command ${m.cmd}`);
    }
  } catch (e) {
    answer(0, e);
  }
});
