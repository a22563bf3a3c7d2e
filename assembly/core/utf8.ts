// UTF-8 ⇄ AssemblyScript strings (UTF-16), for every byte string the host hands over or takes. Pure.
// Smaller than the standard library's String.UTF8 (release size budget), and defined on every input:
// - encode: WTF-8, like String.UTF8.encode: a surrogate pair becomes 4 bytes, a lone surrogate 3 bytes, so every
//   string survives encode → decode unchanged (ledger pod names rely on it).
// - decode: a malformed byte sequence (bad lead byte, missing continuation, overlong form, above U+10FFFF)
//   becomes U+FFFD and decoding resumes at the next byte that was not accepted; 3-byte encoded surrogates are
//   kept (the inverse of encode). Never traps, whatever the bytes.

/** The UTF-8 (WTF-8) bytes of s. */
export function utf8Encode(s: string): ArrayBuffer {
  const buf = new ArrayBuffer(i32(encodeInto(s, 0)));
  encodeInto(s, changetype<usize>(buf));
  return buf;
}

/** Writes the encoding of s at p, or only measures it when p is 0. Returns its length in bytes. */
export function encodeInto(s: string, p: usize): usize {
  let n: usize = 0;
  for (let i = 0; i < s.length; i++) {
    let c = <u32>s.charCodeAt(i);
    let len: u32 = 3;
    if (c < 0x80) len = 1;
    else if (c < 0x800) len = 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      const d = s.charCodeAt(i + 1); // -1 past the end
      if (d >= 0xdc00 && d <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (<u32>d - 0xdc00);
        len = 4;
        i++;
      }
    }
    if (p != 0) {
      let lead: u32 = 0;
      if (len > 1) lead = (0xf00 >> len) & 0xff; // 0xc0, 0xe0, 0xf0
      store<u8>(p + n, lead | (c >> (6 * (len - 1))));
      for (let k: u32 = 1; k < len; k++) store<u8>(p + n + k, 0x80 | ((c >> (6 * (len - 1 - k))) & 0x3f));
    }
    n += len;
  }
  return n;
}

/** The string of the len bytes at p (see the file header for malformed input). */
export function utf8Decode(p: usize, len: usize): string {
  if (len == 0) return "";
  const tmp = new ArrayBuffer(i32(len << 1)); // never more UTF-16 units than bytes
  let q = changetype<usize>(tmp);
  const end = p + len;
  while (p < end) {
    const b = <u32>load<u8>(p++);
    let c: u32 = 0xfffd;
    if (b < 0x80) c = b;
    else if (b >= 0xc2 && b <= 0xf4) {
      let more = 1;
      let min: u32 = 0x80;
      let v = b & 0x1f;
      if (b >= 0xf0) { more = 3; min = 0x10000; v = b & 0x07; }
      else if (b >= 0xe0) { more = 2; min = 0x800; v = b & 0x0f; }
      let k = 0;
      while (k < more && p + k < end && (load<u8>(p + k) & 0xc0) == 0x80) {
        v = (v << 6) | (load<u8>(p + k) & 0x3f);
        k++;
      }
      if (k == more && v >= min && v <= 0x10ffff) { c = v; p += k; }
    }
    if (c >= 0x10000) {
      c -= 0x10000;
      store<u16>(q, 0xd800 | (c >> 10));
      q += 2;
      c = 0xdc00 | (c & 0x3ff);
    }
    store<u16>(q, c);
    q += 2;
  }
  return String.UTF16.decodeUnsafe(changetype<usize>(tmp), q - changetype<usize>(tmp));
}

/** Whether the `n` bytes at p are the encoding of s (utf8Encode's), compared in place while s is ASCII (its first
 *  non-ASCII character, if any, is at the same offset in bytes as in characters), by encoding s from there on. */
export function utf8Is(p: usize, n: i32, s: string): bool {
  const q = changetype<usize>(s);
  const l = s.length;
  for (let i = 0; i < l; i++) {
    const c = u32(load<u16>(q + (usize(i) << 1)));
    if (c >= 0x80) {
      const b = utf8Encode(s);
      if (b.byteLength != n) return false;
      const e = changetype<usize>(b);
      for (let k = i; k < n; k++) if (load<u8>(e + k) != load<u8>(p + k)) return false;
      return true;
    }
    if (i >= n || c != u32(load<u8>(p + i))) return false;
  }
  return n == l;
}
