// Minimal strict JSON reader for the plugin configuration. Pure: no host, no SDK.
// Never aborts on bad input: parseJson() returns null and sets `jsonError` (with a byte offset).
// Depth is bounded so hostile input cannot exhaust the wasm stack.
// Kept small on purpose (the release module has a size budget): module-level state instead of a parser object, one
// routine for objects and arrays, and String#charCodeAt's -1 past the end standing in for explicit length checks.
// Values live in one module-level array and link to their children by index, so no managed type refers to itself:
// AssemblyScript 0.17 then proves every type acyclic and leaves its cycle collector out of the module.

export const enum JType { Null = 0, Bool = 1, Num = 2, Str = 3, Arr = 4, Obj = 5 }

const MAX_DEPTH = 32;

export class JValue {
  type: JType = JType.Null;
  n: f64 = 0;                                    // Num; Bool: 1 for true, 0 for false
  s: string = "";                                // Str
  k: string = "";                                // the key of an object member
  idx: i32 = 0;                                  // this value's index in the value array
  first: i32 = -1;                               // Arr, Obj: index of the first element / member (document order)
  next: i32 = -1;                                // index of the next sibling, -1 for the last
  count: i32 = 0;                                // Arr, Obj: number of elements / members

  get(key: string): JValue | null {
    let i = this.first;
    while (i >= 0) {
      const v = jsonAt(i);
      if (v.k == key) return v;
      i = v.next;
    }
    return null;
  }
}

// Sized once per parse: a document of n characters holds at most n values (each takes at least one character), so
// the array never grows (AssemblyScript 0.17 grows arrays one element at a time, copying each time).
let nodes = new Array<JValue | null>(0);
let count: i32 = 0;

/** The value at index i (a `first` or `next` link of a value from the last parse). */
export function jsonAt(i: i32): JValue {
  return changetype<JValue>(unchecked(nodes[i])); // set by make() for every index a link can hold
}

/** Drops the values of the last parse. */
export function jsonFree(): void {
  nodes = new Array<JValue | null>(0);
  count = 0;
}

function make(t: JType): JValue {
  const v = new JValue();
  v.type = t;
  v.idx = count;
  unchecked(nodes[count++] = v);
  return v;
}

export function typeName(t: JType): string {
  switch (t) {
    case JType.Null: return "null";
    case JType.Bool: return "boolean";
    case JType.Num: return "number";
    case JType.Str: return "string";
    case JType.Arr: return "array";
  }
  return "object";
}

let src: string = "";
let pos: i32 = 0;
/** Why the last parseJson() returned null: "<why> at offset <n>". */
export let jsonError: string = "";

export function parseJson(text: string): JValue | null {
  src = text;
  pos = 0;
  jsonError = "";
  nodes = new Array<JValue | null>(text.length);
  count = 0;
  const v = document();
  src = ""; // do not keep the configuration text alive after parsing
  return v;
}

function document(): JValue | null {
  const v = value(0);
  if (v === null) return null;
  if (ws() >= 0) return fail("unexpected trailing characters");
  return v;
}

function fail(msg: string): JValue | null {
  jsonError = msg + " at offset " + u64(pos).toString();
  return null;
}

/** Skips whitespace; the next character, or -1 at the end. */
function ws(): i32 {
  let c = src.charCodeAt(pos);
  while (c == 0x20 || c == 0x09 || c == 0x0a || c == 0x0d) c = src.charCodeAt(++pos);
  return c;
}

function isDigit(c: i32): bool { return c >= 0x30 && c <= 0x39; }

function value(depth: i32): JValue | null {
  if (depth > MAX_DEPTH) return fail("nesting too deep");
  const c = ws();
  if (c < 0) return fail("unexpected end of input");
  if (c == 0x7b || c == 0x5b) return container(c, depth);
  if (c == 0x22) {
    const s = str();
    if (s === null) return null;
    const v = make(JType.Str);
    v.s = s;
    return v;
  }
  const v = make(JType.Bool);
  if (c == 0x2d || isDigit(c)) return number(v);
  if (word("true")) { v.n = 1; return v; }
  if (word("false")) return v;
  v.type = JType.Null;
  if (word("null")) return v;
  return fail("unexpected character");
}

function word(w: string): bool {
  if (src.substring(pos, pos + w.length) != w) return false;
  pos += w.length;
  return true;
}

/** An object (open = '{') or an array (open = '['), starting at its opening bracket. */
function container(open: i32, depth: i32): JValue | null {
  const isObj = open == 0x7b;
  const close = open + 2; // '}' or ']'
  const v = make(JType.Arr);
  if (isObj) v.type = JType.Obj;
  let last = -1;
  pos++;
  if (ws() == close) { pos++; return v; }
  while (true) {
    let k = "";
    if (isObj) {
      if (ws() != 0x22) return fail("expected a string key");
      const key = str();
      if (key === null) return null;
      if (v.get(key) !== null) return fail("duplicate key \"" + key + "\"");
      if (ws() != 0x3a) return fail("expected ':'");
      pos++;
      k = key;
    }
    const item = value(depth + 1);
    if (item === null) return null;
    item.k = k;
    if (last < 0) v.first = item.idx;
    else jsonAt(last).next = item.idx;
    last = item.idx;
    v.count++;
    const c = ws();
    if (c < 0) return fail("unexpected end of input");
    pos++;
    if (c == close) return v;
    if (c != 0x2c) {
      pos--;
      if (isObj) return fail("expected ',' or '}'");
      return fail("expected ',' or ']'");
    }
  }
  return null;
}

/** A string, starting at its opening quote; null (and jsonError) if malformed. */
function str(): string | null {
  pos++;
  const start = pos;
  // Pass 1: validate up to the closing quote and count the characters (errors at the same offsets as ever).
  let n = 0;
  while (true) {
    const c = src.charCodeAt(pos);
    if (c == 0x22) break;
    if (c < 0) { fail("unterminated string"); return null; }
    if (c < 0x20) { fail("control character in string"); return null; }
    pos++;
    n++;
    if (c != 0x5c) continue;
    const e = src.charCodeAt(pos);
    if (e < 0) { fail("unterminated string"); return null; }
    pos++;
    if (e == 0x75) {
      if (hex4() < 0) { fail("bad \\u escape"); return null; }
    } else if (unescape(e) < 0) { pos--; fail("bad escape"); return null; }
  }
  const end = pos;
  pos++;
  if (n == end - start) return src.substring(start, end); // no escape
  // Pass 2: one string of exactly n characters (appending piece by piece was quadratic in the escapes).
  const out = __new(n << 1, idof<String>());
  let o = out;
  pos = start;
  while (pos < end) {
    let c = src.charCodeAt(pos++);
    if (c == 0x5c) {
      c = src.charCodeAt(pos++);
      if (c == 0x75) c = hex4();
      else c = unescape(c);
    }
    store<u16>(o, u16(c));
    o += 2;
  }
  pos = end + 1;
  return changetype<String>(out); // retains
}

/** The character an escape letter stands for (after the backslash; not `u`), or -1. */
function unescape(e: i32): i32 {
  if (e == 0x62) return 0x08;
  if (e == 0x66) return 0x0c;
  if (e == 0x6e) return 0x0a;
  if (e == 0x72) return 0x0d;
  if (e == 0x74) return 0x09;
  if (e == 0x22 || e == 0x5c || e == 0x2f) return e;
  return -1;
}

/** Four hex digits at pos (consumed), or -1 (nothing consumed). */
function hex4(): i32 {
  let r = 0;
  for (let i = 0; i < 4; i++) {
    const c = src.charCodeAt(pos + i);
    const l = c | 0x20;
    let d = -1;
    if (isDigit(c)) d = c - 0x30;
    else if (l >= 0x61 && l <= 0x66) d = l - 0x61 + 10;
    if (d < 0) return -1;
    r = (r << 4) | d;
  }
  pos += 4;
  return r;
}

let num: f64 = 0;
let scale: i32 = 0;

/** Consumes a run of digits into num (each one lowers scale by `frac`); false if there is none. */
function digits(frac: i32): bool {
  let c = src.charCodeAt(pos);
  if (!isDigit(c)) return false;
  do {
    num = num * 10 + f64(c - 0x30);
    scale -= frac;
    c = src.charCodeAt(++pos);
  } while (isDigit(c));
  return true;
}

function number(v: JValue): JValue | null {
  const neg = src.charCodeAt(pos) == 0x2d;
  if (neg) pos++;
  num = 0;
  scale = 0;
  if (src.charCodeAt(pos) == 0x30) pos++;
  else if (!digits(0)) return fail("bad number");
  if (src.charCodeAt(pos) == 0x2e) {
    pos++;
    if (!digits(1)) return fail("bad number");
  }
  let c = src.charCodeAt(pos);
  if ((c | 0x20) == 0x65) {
    c = src.charCodeAt(++pos);
    let eneg = false;
    if (c == 0x2b || c == 0x2d) { eneg = c == 0x2d; c = src.charCodeAt(++pos); }
    if (!isDigit(c)) return fail("bad number");
    let e: i32 = 0;
    do {
      if (e < 10000) e = e * 10 + (c - 0x30);
      c = src.charCodeAt(++pos);
    } while (isDigit(c));
    if (eneg) scale -= e;
    else scale += e;
  }
  // Only integers matter to the configuration, and JSON Schema's "integer" means a mathematical integer, so
  // 1e3 and 1000.0 are 1000. The value is kept as mantissa·10^scale; a number with a non-zero fractional part
  // becomes NaN (non-integral), which every integer field rejects with its own message.
  let n = num;
  while (scale < 0 && n != 0 && Math.floor(n / 10) * 10 == n) { n /= 10; scale++; }
  if (n == 0) scale = 0;
  if (scale < 0) n = NaN;
  else if (scale > 30) n = Infinity;
  else for (let k = 0; k < scale; k++) n *= 10;
  v.type = JType.Num;
  v.n = n;
  if (neg) v.n = -n;
  return v;
}
