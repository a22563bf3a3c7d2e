// IP addresses and CIDR allowlists (for the metrics/health endpoints). Pure.
// Addresses are kept as 16 bytes: IPv4 as IPv4-mapped IPv6 (::ffff:a.b.c.d), so one comparison serves both.

export class Cidr {
  addr: StaticArray<u8> = new StaticArray<u8>(16);
  bits: i32 = 128;
}

function parseV4(s: string, out: StaticArray<u8>): bool {
  let part = 0;
  let val = 0;
  let digits = 0;
  for (let i = 0; i <= s.length; i++) {
    const c = i < s.length ? s.charCodeAt(i) : 0x2e;
    if (c == 0x2e) {
      if (digits == 0 || part > 3) return false;
      out[12 + part] = u8(val);
      part++;
      val = 0;
      digits = 0;
    } else if (c >= 0x30 && c <= 0x39) {
      if (digits > 0 && val == 0) return false; // no leading zeros
      val = val * 10 + (c - 0x30);
      digits++;
      if (val > 255) return false;
    } else return false;
  }
  if (part != 4) return false;
  for (let i = 0; i < 10; i++) out[i] = 0;
  out[10] = 0xff;
  out[11] = 0xff;
  return true;
}

function hexVal(c: i32): i32 {
  const l = c | 0x20;
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (l >= 0x61 && l <= 0x66) return l - 0x61 + 10;
  return -1;
}

/** Groups of 1..4 hex digits separated by ':', at most one "::" standing for one or more zero groups. Groups are
 *  written to `out` in order; the ones after "::" are moved to the end at the close. */
function parseV6(s: string, out: StaticArray<u8>): bool {
  const len = s.length;
  let n = 0;    // groups written
  let gap = -1; // number of groups before "::"
  let i = 0;
  if (s.charCodeAt(0) == 0x3a) {
    if (s.charCodeAt(1) != 0x3a) return false;
    gap = 0;
    i = 2;
  }
  while (i < len) {
    let val = 0;
    let digits = 0;
    while (i < len) {
      const h = hexVal(s.charCodeAt(i));
      if (h < 0) break;
      if (digits == 4) return false;
      val = (val << 4) | h;
      digits++;
      i++;
    }
    if (digits == 0 || n == 8) return false;
    out[2 * n] = u8(val >> 8);
    out[2 * n + 1] = u8(val);
    n++;
    if (i == len) break;
    if (s.charCodeAt(i) != 0x3a) return false;
    i++;
    if (s.charCodeAt(i) == 0x3a) {
      if (gap >= 0) return false;
      gap = n;
      i++;
    } else if (i == len) return false; // a trailing single ':'
  }
  if (gap < 0) return n == 8;
  if (n > 7) return false;
  const shift = 2 * (8 - n); // bytes of zero groups
  for (let k = 15; k >= 2 * gap + shift; k--) out[k] = out[k - shift];
  for (let k = 2 * gap; k < 2 * gap + shift; k++) out[k] = 0;
  return true;
}

/** Parses "a.b.c.d", "a.b.c.d/n", "v6", "v6/n". Returns null when malformed. */
export function parseCidr(s: string): Cidr | null {
  const c = new Cidr();
  const slash = s.indexOf("/");
  let ip = s;
  let bits = -1;
  if (slash >= 0) {
    ip = s.substring(0, slash);
    const b = s.substring(slash + 1);
    if (b.length == 0 || b.length > 3) return null;
    bits = 0;
    for (let i = 0; i < b.length; i++) {
      const ch = b.charCodeAt(i);
      if (ch < 0x30 || ch > 0x39) return null;
      bits = bits * 10 + (ch - 0x30);
    }
  }
  if (parseV4(ip, c.addr)) {
    if (bits > 32) return null;
    c.bits = bits < 0 ? 128 : 96 + bits;
    return c;
  }
  if (parseV6(ip, c.addr)) {
    if (bits > 128) return null;
    c.bits = bits < 0 ? 128 : bits;
    return c;
  }
  return null;
}

/** Extracts the IP from Envoy's address form "ip:port" or "[v6]:port" (envoy-host.md §6.2); a bare IP is kept. */
export function hostOf(address: string): string {
  if (address.charCodeAt(0) == 0x5b) { // -1 when empty
    const end = address.indexOf("]");
    if (end > 0) return address.substring(1, end);
    return address;
  }
  let colons = 0;
  let colon = 0;
  for (let i = 0; i < address.length; i++) {
    if (address.charCodeAt(i) == 0x3a) { colons++; colon = i; }
  }
  if (colons == 1 && colon > 0) return address.substring(0, colon); // one ':' is a port; more is a bare IPv6
  return address;
}

/** True when the address (any of Envoy's forms) lies in one of the CIDRs. Unparseable → false. */
export function allowed(list: Array<Cidr>, address: string): bool {
  const ip = new StaticArray<u8>(16);
  const host = hostOf(address);
  if (!parseV4(host, ip) && !parseV6(host, ip)) return false;
  for (let i = 0; i < list.length; i++) {
    if (matches(list[i], ip)) return true;
  }
  return false;
}

function matches(c: Cidr, ip: StaticArray<u8>): bool {
  let bits = c.bits;
  for (let i = 0; i < 16 && bits > 0; i++) {
    const take = bits >= 8 ? 8 : bits;
    const sh: i32 = 8 - take;
    const full: i32 = 0xff;
    const mask = <u8>((full << sh) & 0xff);
    if ((c.addr[i] & mask) != (ip[i] & mask)) return false;
    bits -= take;
  }
  return true;
}
