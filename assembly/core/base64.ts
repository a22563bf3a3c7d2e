// Standard base64 (RFC 4648 §4, with padding): etcd's JSON gateway carries every key and value as base64 bytes.
// Pure. Decoding is strict: a wrong length, a character outside the alphabet or misplaced padding gives null.

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/** base64 text of `len` bytes at `p`. */
export function base64Encode(p: usize, len: i32): string {
  let out = "";
  let i = 0;
  while (i + 2 < len) {
    const n = (u32(load<u8>(p + i)) << 16) | (u32(load<u8>(p + i + 1)) << 8) | u32(load<u8>(p + i + 2));
    out += sextets(n, 4);
    i += 3;
  }
  const rest = len - i;
  if (rest == 1) out += sextets(u32(load<u8>(p + i)) << 16, 2) + "==";
  else if (rest == 2) out += sextets((u32(load<u8>(p + i)) << 16) | (u32(load<u8>(p + i + 1)) << 8), 3) + "=";
  return out;
}

function sextets(n: u32, count: i32): string {
  let s = "";
  for (let k = 0; k < count; k++) s += ALPHABET.charAt(i32((n >> (18 - 6 * k)) & 63));
  return s;
}

function value(c: i32): i32 {
  if (c >= 0x41 && c <= 0x5a) return c - 0x41;       // A-Z
  if (c >= 0x61 && c <= 0x7a) return c - 0x61 + 26;  // a-z
  if (c >= 0x30 && c <= 0x39) return c - 0x30 + 52;  // 0-9
  if (c == 0x2b) return 62;                           // +
  if (c == 0x2f) return 63;                           // /
  return -1;
}

/** The bytes of base64 text `s`, or null when `s` is not canonical padded base64. */
export function base64Decode(s: string): ArrayBuffer | null {
  const n = s.length;
  if (n % 4 != 0) return null;
  let pad = 0;
  if (n > 0 && s.charCodeAt(n - 1) == 0x3d) pad = s.charCodeAt(n - 2) == 0x3d ? 2 : 1;
  const out = new ArrayBuffer(n / 4 * 3 - pad);
  const p = changetype<usize>(out);
  let o = 0;
  for (let i = 0; i < n; i += 4) {
    const last = i + 4 == n;
    let acc: u32 = 0;
    for (let k = 0; k < 4; k++) {
      const c = s.charCodeAt(i + k);
      let v = value(c);
      if (v < 0) {
        if (!last || c != 0x3d || k < 4 - pad) return null; // '=' only as the final padding
        v = 0;
      }
      acc = (acc << 6) | u32(v);
    }
    store<u8>(p + o, u8(acc >> 16)); o++;
    if (o < out.byteLength) { store<u8>(p + o, u8(acc >> 8)); o++; }
    if (o < out.byteLength) { store<u8>(p + o, u8(acc)); o++; }
    if (last && pad > 0 && (acc & (pad == 2 ? 0xffff : 0xff)) != 0) return null; // non-canonical bits under the padding
  }
  return out;
}
