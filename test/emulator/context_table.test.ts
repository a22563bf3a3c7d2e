// The emulator's table of a VM's live contexts (host/context_table.ts) against a Map: the same answers whatever the
// order of opens and closes, long-lived entries included.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ContextTable } from "./host/context_table.ts";

test("context table: get/has/set/delete agree with a Map across 200k ids, short- and long-lived", () => {
  const t = new ContextTable<{ id: number }>();
  const m = new Map<number, { id: number }>();
  let seed = 7;
  const rnd = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
  const open: number[] = [];
  for (let id = 0; id < 200_000; id++) {
    if (rnd() < 0.05) continue; // an id used by another table (never set here)
    const v = { id };
    t.set(id, v);
    m.set(id, v);
    // most contexts close at once; 2 % stay open, and now and then one of those closes, out of order
    if (rnd() < 0.98) assert.equal(t.delete(id), m.delete(id));
    else open.push(id);
    if (open.length > 0 && rnd() < 0.01) {
      const [c] = open.splice(Math.floor(rnd() * open.length), 1);
      assert.equal(t.delete(c), m.delete(c));
    }
    if (id % 997 === 0) {
      for (const probe of [id, id - 1, id - 5000, id - 9000, 0, id + 1]) {
        assert.equal(t.get(probe), m.get(probe), `get ${probe} at ${id}`);
        assert.equal(t.has(probe), m.has(probe));
      }
    }
  }
  for (const id of open) assert.equal(t.get(id), m.get(id));
  assert.equal(t.delete(12_345_678), false);
  assert.ok(open.length > 1000, "some contexts stayed open across many window moves");
  for (const id of open) assert.equal(t.delete(id), true);
  for (const id of open) assert.equal(t.has(id), false);
});

test("context table: an id set again replaces the value; a re-set old id is found", () => {
  const t = new ContextTable<string>();
  t.set(1, "a");
  for (let id = 2; id < 20_000; id++) { t.set(id, "x"); t.delete(id); }
  assert.equal(t.get(1), "a"); // moved out of the window
  t.set(1, "b");
  assert.equal(t.get(1), "b");
  t.set(19_999, "c");
  assert.equal(t.get(19_999), "c");
  assert.equal(t.delete(1), true);
  assert.equal(t.get(1), undefined);
});
