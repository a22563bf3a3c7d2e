// The port through which the core reads and writes Envoy shared data. Implemented once over the ABI in
// assembly/host/shared_store.ts and by a fake in the unit tests. Pure (no host imports).

export const ST_OK: u32 = 0;
export const ST_NOT_FOUND: u32 = 1;
export const ST_CAS_MISMATCH: u32 = 8;

export abstract class SharedStore {
  /** After get() returned ST_OK: the value's bytes (owned by the store, valid until the next get or done()). */
  valuePtr: usize = 0;
  valueLen: i32 = 0;
  cas: u32 = 0;
  /** Reads `key`; returns a WasmResult code (ST_OK, ST_NOT_FOUND, …). */
  abstract get(key: string): u32;
  /** Writes `key` if its cas still equals `cas` (0 = unconditional). Returns ST_OK, ST_CAS_MISMATCH, … */
  abstract set(key: string, value: ArrayBuffer, cas: u32): u32;
  /** Writes the bytes of the last get back to `key` (as changed in place), under the same cas rule as set(). Call it
   *  before done(). */
  abstract setValue(key: string, cas: u32): u32;
  /** Releases the bytes of the last get. */
  abstract done(): void;
}
