// Minimal strict JSON reader for the plugin configuration. Pure: no host, no SDK.
// Never aborts on bad input: parse() returns null and sets `error` (with a byte offset).
// Depth is bounded so hostile input cannot exhaust the wasm stack.

export const enum JType { Null = 0, Bool = 1, Num = 2, Str = 3, Arr = 4, Obj = 5 }

const MAX_DEPTH = 32;

export class JValue {
  type: JType = JType.Null;
  b: bool = false;
  n: f64 = 0;
  s: string = "";
  items: Array<JValue> = new Array<JValue>(0);   // Arr
  keys: Array<string> = new Array<string>(0);    // Obj, in document order
  vals: Array<JValue> = new Array<JValue>(0);    // Obj

  get(key: string): JValue | null {
    const ks = this.keys;
    for (let i = 0; i < ks.length; i++) {
      if (ks[i] == key) return this.vals[i];
    }
    return null;
  }

  typeName(): string {
    switch (this.type) {
      case JType.Null: return "null";
      case JType.Bool: return "boolean";
      case JType.Num: return "number";
      case JType.Str: return "string";
      case JType.Arr: return "array";
    }
    return "object";
  }
}

export class JsonParser {
  private src: string = "";
  private pos: i32 = 0;
  error: string = "";

  parse(text: string): JValue | null {
    this.src = text;
    this.pos = 0;
    this.error = "";
    const v = this.value(0);
    if (v === null) return null;
    this.ws();
    if (this.pos < this.src.length) {
      this.fail("unexpected trailing characters");
      return null;
    }
    return v;
  }

  private fail(msg: string): void {
    if (this.error.length == 0) this.error = msg + " at offset " + this.pos.toString();
  }

  private ws(): void {
    const s = this.src;
    while (this.pos < s.length) {
      const c = s.charCodeAt(this.pos);
      if (c == 0x20 || c == 0x09 || c == 0x0a || c == 0x0d) this.pos++;
      else break;
    }
  }

  private value(depth: i32): JValue | null {
    if (depth > MAX_DEPTH) { this.fail("nesting too deep"); return null; }
    this.ws();
    if (this.pos >= this.src.length) { this.fail("unexpected end of input"); return null; }
    const c = this.src.charCodeAt(this.pos);
    if (c == 0x7b) return this.object(depth);
    if (c == 0x5b) return this.array(depth);
    if (c == 0x22) {
      const s = this.string();
      if (s === null) return null;
      const v = new JValue();
      v.type = JType.Str;
      v.s = s;
      return v;
    }
    if (c == 0x2d || (c >= 0x30 && c <= 0x39)) return this.number();
    if (this.word("true")) { const v = new JValue(); v.type = JType.Bool; v.b = true; return v; }
    if (this.word("false")) { const v = new JValue(); v.type = JType.Bool; return v; }
    if (this.word("null")) return new JValue();
    this.fail("unexpected character");
    return null;
  }

  private word(w: string): bool {
    if (this.src.startsWith(w, this.pos)) {
      this.pos += w.length;
      return true;
    }
    return false;
  }

  private object(depth: i32): JValue | null {
    const v = new JValue();
    v.type = JType.Obj;
    this.pos++; // {
    this.ws();
    if (this.pos < this.src.length && this.src.charCodeAt(this.pos) == 0x7d) { this.pos++; return v; }
    while (true) {
      this.ws();
      if (this.pos >= this.src.length || this.src.charCodeAt(this.pos) != 0x22) { this.fail("expected a string key"); return null; }
      const k = this.string();
      if (k === null) return null;
      if (v.get(k) !== null) { this.fail("duplicate key \"" + k + "\""); return null; }
      this.ws();
      if (this.pos >= this.src.length || this.src.charCodeAt(this.pos) != 0x3a) { this.fail("expected ':'"); return null; }
      this.pos++;
      const item = this.value(depth + 1);
      if (item === null) return null;
      v.keys.push(k);
      v.vals.push(item);
      this.ws();
      if (this.pos >= this.src.length) { this.fail("unexpected end of input"); return null; }
      const c = this.src.charCodeAt(this.pos);
      this.pos++;
      if (c == 0x2c) continue;
      if (c == 0x7d) return v;
      this.pos--;
      this.fail("expected ',' or '}'");
      return null;
    }
  }

  private array(depth: i32): JValue | null {
    const v = new JValue();
    v.type = JType.Arr;
    this.pos++; // [
    this.ws();
    if (this.pos < this.src.length && this.src.charCodeAt(this.pos) == 0x5d) { this.pos++; return v; }
    while (true) {
      const item = this.value(depth + 1);
      if (item === null) return null;
      v.items.push(item);
      this.ws();
      if (this.pos >= this.src.length) { this.fail("unexpected end of input"); return null; }
      const c = this.src.charCodeAt(this.pos);
      this.pos++;
      if (c == 0x2c) continue;
      if (c == 0x5d) return v;
      this.pos--;
      this.fail("expected ',' or ']'");
      return null;
    }
  }

  private hex4(): i32 {
    if (this.pos + 4 > this.src.length) return -1;
    let r = 0;
    for (let i = 0; i < 4; i++) {
      const c = this.src.charCodeAt(this.pos + i);
      let d = -1;
      if (c >= 0x30 && c <= 0x39) d = c - 0x30;
      else if (c >= 0x61 && c <= 0x66) d = c - 0x61 + 10;
      else if (c >= 0x41 && c <= 0x46) d = c - 0x41 + 10;
      if (d < 0) return -1;
      r = (r << 4) | d;
    }
    this.pos += 4;
    return r;
  }

  private string(): string | null {
    const s = this.src;
    this.pos++; // opening quote
    let out = "";
    let start = this.pos;
    while (true) {
      if (this.pos >= s.length) { this.fail("unterminated string"); return null; }
      const c = s.charCodeAt(this.pos);
      if (c == 0x22) {
        out += s.substring(start, this.pos);
        this.pos++;
        return out;
      }
      if (c < 0x20) { this.fail("control character in string"); return null; }
      if (c != 0x5c) { this.pos++; continue; }
      out += s.substring(start, this.pos);
      this.pos++;
      if (this.pos >= s.length) { this.fail("unterminated string"); return null; }
      const e = s.charCodeAt(this.pos);
      this.pos++;
      if (e == 0x22) out += "\"";
      else if (e == 0x5c) out += "\\";
      else if (e == 0x2f) out += "/";
      else if (e == 0x62) out += "\b";
      else if (e == 0x66) out += "\f";
      else if (e == 0x6e) out += "\n";
      else if (e == 0x72) out += "\r";
      else if (e == 0x74) out += "\t";
      else if (e == 0x75) {
        const u = this.hex4();
        if (u < 0) { this.fail("bad \\u escape"); return null; }
        out += String.fromCharCode(u);
      } else { this.pos--; this.fail("bad escape"); return null; }
      start = this.pos;
    }
  }

  private number(): JValue | null {
    const s = this.src;
    const start = this.pos;
    if (s.charCodeAt(this.pos) == 0x2d) this.pos++;
    if (this.pos >= s.length) { this.fail("bad number"); return null; }
    let c = s.charCodeAt(this.pos);
    if (c == 0x30) this.pos++;
    else if (c >= 0x31 && c <= 0x39) { while (this.pos < s.length && isDigit(s.charCodeAt(this.pos))) this.pos++; }
    else { this.fail("bad number"); return null; }
    if (this.pos < s.length && s.charCodeAt(this.pos) == 0x2e) {
      this.pos++;
      if (this.pos >= s.length || !isDigit(s.charCodeAt(this.pos))) { this.fail("bad number"); return null; }
      while (this.pos < s.length && isDigit(s.charCodeAt(this.pos))) this.pos++;
    }
    if (this.pos < s.length) {
      c = s.charCodeAt(this.pos);
      if (c == 0x65 || c == 0x45) {
        this.pos++;
        if (this.pos < s.length) {
          c = s.charCodeAt(this.pos);
          if (c == 0x2b || c == 0x2d) this.pos++;
        }
        if (this.pos >= s.length || !isDigit(s.charCodeAt(this.pos))) { this.fail("bad number"); return null; }
        while (this.pos < s.length && isDigit(s.charCodeAt(this.pos))) this.pos++;
      }
    }
    // Only integers matter to the configuration, and JSON Schema's "integer" means a mathematical integer, so
    // 1e3 and 1000.0 are 1000. The value is kept as mantissa·10^scale; a number with a non-zero fractional part
    // becomes NaN (non-integral), which every integer field rejects with its own message.
    const v = new JValue();
    v.type = JType.Num;
    let n: f64 = 0;
    let scale: i32 = 0;
    let i = start;
    const neg = s.charCodeAt(i) == 0x2d;
    if (neg) i++;
    while (i < this.pos && isDigit(s.charCodeAt(i))) { n = n * 10 + f64(s.charCodeAt(i) - 0x30); i++; }
    if (i < this.pos && s.charCodeAt(i) == 0x2e) {
      i++;
      while (i < this.pos && isDigit(s.charCodeAt(i))) { n = n * 10 + f64(s.charCodeAt(i) - 0x30); scale--; i++; }
    }
    if (i < this.pos) { // exponent
      i++;
      let eneg = false;
      const c = s.charCodeAt(i);
      if (c == 0x2d || c == 0x2b) { eneg = c == 0x2d; i++; }
      let e: i32 = 0;
      while (i < this.pos) { if (e < 10000) e = e * 10 + (s.charCodeAt(i) - 0x30); i++; }
      scale += eneg ? -e : e;
    }
    while (scale < 0 && n != 0 && Math.floor(n / 10) * 10 == n) { n /= 10; scale++; }
    if (n == 0) scale = 0;
    if (scale < 0) n = NaN;
    else if (scale > 30) n = Infinity;
    else for (let k = 0; k < scale; k++) n *= 10;
    v.n = neg ? -n : n;
    return v;
  }
}

function isDigit(c: i32): bool { return c >= 0x30 && c <= 0x39; }
