// A VM's live contexts by id (Envoy: WasmBase::contexts_, an unordered_map). Only how the emulator stores them; no
// Envoy rule lives here. Context ids grow by one per context (Vm.allocContextId), and most streams end soon after
// they begin, so recent ids sit in an array indexed by id − base; when the array grows past WINDOW slots its older
// half moves to a Map. A JS Map alone, under one insert and one delete per stream, slows down with the number of
// contexts it holds (at 100k open streams about 6× per operation, plus the garbage of its rehashing), which would
// make every lifecycle in the emulator cost more the more streams are open, a cost Envoy does not have (bench P1).
export class ContextTable<T> {
  private static readonly WINDOW = 4096;
  private base = 0;                          // the id of recent[0]
  private recent: Array<T | undefined> = [];
  private old = new Map<number, T>();        // ids below base that are still open

  get(id: number): T | undefined {
    if (id >= this.base) return this.recent[id - this.base];
    return this.old.get(id);
  }

  has(id: number): boolean {
    return this.get(id) !== undefined;
  }

  set(id: number, v: T): void {
    if (id < this.base) {
      this.old.set(id, v);
      return;
    }
    const i = id - this.base;
    if (i >= ContextTable.WINDOW * 2) this.slide(i - ContextTable.WINDOW);
    const r = this.recent;
    while (r.length < id - this.base) r.push(undefined); // ids skipped (another table's, or never set)
    r[id - this.base] = v;
  }

  delete(id: number): boolean {
    if (id < this.base) return this.old.delete(id);
    const i = id - this.base;
    if (i >= this.recent.length || this.recent[i] === undefined) return false;
    this.recent[i] = undefined;
    return true;
  }

  /** moves the first n slots' open contexts to `old` and makes id base + n the first slot */
  private slide(n: number): void {
    const r = this.recent;
    const k = Math.min(n, r.length);
    for (let i = 0; i < k; i++) if (r[i] !== undefined) this.old.set(this.base + i, r[i]!);
    this.recent = r.slice(k);
    this.base += n;
  }
}
