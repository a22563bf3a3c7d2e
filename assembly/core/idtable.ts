// Context id → object: the dispatcher's tables of roots and streams (index.ts). Pure (no host imports).
//
// Open addressing over 8-byte slots (u32 id, object pointer) in one ArrayBuffer: Fibonacci hashing, linear
// probing, deletion by backward shift (no tombstones), doubling at half load. A lookup reads one slot, or a few
// adjacent ones. ~lib/map reads a bucket head and then an entry chain that keeps deleted entries until its next
// rehash: with 100k streams open, those reads missed the CPU caches several times per callback (bench P1 flatness).
// Id 0 marks an empty slot: Envoy never gives a context id 0, and get/set/delete ignore it. The table never shrinks:
// a Wasm memory never does either, so after a peak of open streams the VM's footprint is that peak's in any case.
// The table holds one reference to each object it stores (retained by set, released by delete and replacement).

const MIN_BITS: u32 = 4;

export class IdTable<T> {
  private buf: ArrayBuffer = new ArrayBuffer(8 << MIN_BITS); // cap × (u32 id, u32 pointer), zeroed
  private bits: u32 = MIN_BITS;
  private count: i32 = 0;

  /** the number of objects stored */
  get size(): i32 { return this.count; }

  has(id: u32): bool {
    return load<u32>(this.slotOf(id)) == id && id != 0;
  }

  /** the object stored under `id`, or null */
  find(id: u32): T | null {
    const p = this.slotOf(id);
    if (load<u32>(p) != id || id == 0) return null;
    return changetype<T>(load<usize>(p, 4));
  }

  /** the object stored under `id`, which must be there (has): otherwise a trap, as ~lib/map's get */
  get(id: u32): T {
    const p = this.slotOf(id);
    if (load<u32>(p) != id || id == 0) unreachable();
    return changetype<T>(load<usize>(p, 4));
  }

  set(id: u32, v: T): void {
    if (id == 0) return;
    const p = this.slotOf(id);
    const ptr = changetype<usize>(v);
    const old = load<u32>(p) == id ? load<usize>(p, 4) : 0;
    if (old == ptr) return;
    __retain(ptr);
    store<u32>(p, id);
    store<usize>(p, ptr, 4);
    if (old != 0) { __release(old); return; }
    if (++this.count > (1 << (this.bits - 1))) this.grow();
  }

  /** Removes `id`; returns whether it was stored. */
  delete(id: u32): bool {
    const base = changetype<usize>(this.buf);
    const mask = (u32(1) << this.bits) - 1;
    let hole = this.home(id);
    while (true) {
      const k = load<u32>(base + (usize(hole) << 3));
      if (k == 0 || id == 0) return false;
      if (k == id) break;
      hole = (hole + 1) & mask;
    }
    const ptr = load<usize>(base + (usize(hole) << 3), 4);
    // backward shift: an entry after the hole moves into it unless its home lies in (hole, j]
    let j = hole;
    while (true) {
      j = (j + 1) & mask;
      const k = load<u32>(base + (usize(j) << 3));
      if (k == 0) break;
      if (((j - this.home(k)) & mask) >= ((j - hole) & mask)) {
        store<u64>(base + (usize(hole) << 3), load<u64>(base + (usize(j) << 3)));
        hole = j;
      }
    }
    store<u64>(base + (usize(hole) << 3), 0);
    this.count--;
    __release(ptr);
    return true;
  }

  private home(id: u32): u32 {
    return (id * 0x9E3779B1) >> (32 - this.bits);
  }

  /** the slot holding `id`, or the empty slot where it would go */
  private slotOf(id: u32): usize {
    const base = changetype<usize>(this.buf);
    const mask = (u32(1) << this.bits) - 1;
    let i = this.home(id);
    while (true) {
      const p = base + (usize(i) << 3);
      const k = load<u32>(p);
      if (k == id || k == 0) return p;
      i = (i + 1) & mask;
    }
    return 0; // not reached: the table is never more than half full
  }

  private grow(): void {
    const old = this.buf; // kept alive by this local until the copy is done
    const p0 = changetype<usize>(old);
    this.bits++;
    this.buf = new ArrayBuffer(8 << this.bits);
    for (let p = p0; p < p0 + old.byteLength; p += 8) {
      const id = load<u32>(p);
      if (id != 0) store<u64>(this.slotOf(id), load<u64>(p)); // references move with their slots
    }
  }
}
