// An Arm in a worker thread of its own, driven synchronously from the main thread (bench P0, P1).
// Every arm runs the same emulator code; in one V8 isolate that code is compiled once for all arms, so one arm's time
// depended on which other modules had run through it (the empty module's lifecycle measured 0.85 µs or 1.95 µs in
// the same session depending on the mix) and on the other arms' garbage. A worker is an isolate of its own: its own
// JIT state and heap. Batches still alternate between the arms within each round, so a disturbance of the machine
// falls on every arm alike, and only one worker runs at a time (the main thread waits).
import { once } from "node:events";
import { Worker } from "node:worker_threads";

export type Op = "lifecycle" | "plain" | "post" | "skipped" | "message";

export interface ArmSpec { name: string; wasm: Uint8Array; config: string; rate?: number }

/** A worker's reply slot: [0] state (0 waiting, 1 done, 2 failed), then a f64 result, then an error text. */
const SLOT_BYTES = 8 + 8 + 1024;

export class IsolatedArm {
  private readonly w: Worker;
  private readonly sab = new SharedArrayBuffer(SLOT_BYTES);
  private readonly state = new Int32Array(this.sab, 0, 1);
  private readonly result = new Float64Array(this.sab, 8, 1);
  private readonly text = new Uint8Array(this.sab, 16);

  private constructor(readonly spec: ArmSpec) {
    this.w = new Worker(new URL("./arm_worker.mjs", import.meta.url),
      { workerData: { sab: this.sab, name: spec.name, wasm: spec.wasm, config: spec.config, rate: spec.rate ?? 1000 } });
    this.w.unref();
  }

  /** Starts the worker and waits (asynchronously: a worker loads its modules with the main thread's help) until its
   *  Arm exists (module compiled, plugin configured); after that every call is synchronous. */
  static async start(spec: ArmSpec): Promise<IsolatedArm> {
    const a = new IsolatedArm(spec);
    const timer = setTimeout(() => { void a.w.terminate(); }, 120_000); // bounded: a worker that never starts
    try {
      const [m] = await Promise.race([once(a.w, "message"), once(a.w, "exit").then(() => ["exited"])]);
      if (m !== "ready") throw new Error(`${spec.name}: worker did not start (${String(m)})`);
    } finally {
      clearTimeout(timer);
    }
    a.wait("start");
    return a;
  }
  get name(): string { return this.spec.name; }

  private wait(what: string): number {
    // bounded: a worker that does not answer within 5 minutes is a bench failure, not a hang
    const deadline = Date.now() + 300_000;
    while (Atomics.load(this.state, 0) === 0) {
      if (Date.now() > deadline) throw new Error(`${this.spec.name}: worker did not answer ${what}`);
      Atomics.wait(this.state, 0, 0, 1000);
    }
    const st = Atomics.load(this.state, 0);
    Atomics.store(this.state, 0, 0);
    if (st === 2) {
      const n = this.text.indexOf(0);
      throw new Error(`${this.spec.name} (worker): ${new TextDecoder().decode(this.text.slice(0, n < 0 ? this.text.length : n))}`);
    }
    return this.result[0];
  }

  private call(msg: Record<string, unknown>): number {
    this.w.postMessage(msg);
    return this.wait(String(msg.cmd));
  }

  /** runs op `n` times (and for at least `ms` when given), untimed */
  warm(op: Op, n: number, ms: number): void { this.call({ cmd: "warm", op, n, ms }); }
  /** ns per op over a batch of n */
  batch(op: Op, n: number): number { return this.call({ cmd: "batch", op, n }); }
  /** holds `level` admitted streams open within `ms`, then a full GC; returns how many it reached */
  holdOpen(level: number, ms: number): number { return this.call({ cmd: "hold", level, ms }); }
  closeAll(): void { this.call({ cmd: "close" }); }
  failed(): boolean { return this.call({ cmd: "failed" }) !== 0; }
  async stop(): Promise<void> { await this.w.terminate(); }
}
