// WebSocket upgrade detection as Envoy presents requests to filters (envoy-host.md §8.2, §8.3): an HTTP/1.1
// upgrade, or an HTTP/2 extended CONNECT that Envoy's codec already rewrote into the same GET form. Pure: reads the
// header value where the host left it (no string is built per request).

// "websocket" as little-endian words: bytes 0–7 ("websocke") and byte 8 ("t")
const TOKEN_LEN = 9;
const TOKEN_0_7: u64 = 0x656b636f73626577;
const TOKEN_8: u32 = 0x74;

/** True when the comma-separated `upgrade` value in memory [p, p+n) holds the token "websocket" (ASCII
 *  case-insensitive, optional whitespace around items). `connection` is not looked at: Envoy's HCM strips `upgrade`
 *  (and `connection`) before the filters from every request whose `connection` lacks the token "upgrade"
 *  (envoy-host.md §8.1, §8.2), so a filter that sees `upgrade` sees an upgrade Envoy accepted as one. */
export function isWebSocketUpgrade(p: usize, n: i32): bool {
  let i = 0;
  while (i <= n) {
    let a = i;
    while (i < n && load<u8>(p + i) != 0x2c) i++; // [a, i) is one item
    let b = i;
    while (a < b && isOws(load<u8>(p + a))) a++;
    while (b > a && isOws(load<u8>(p + b - 1))) b--;
    if (b - a == TOKEN_LEN && isToken(p + a)) return true;
    i++;
  }
  return false;
}

function isOws(c: u32): bool { return c == 0x20 || c == 0x09; }

/** The 9 bytes at p are "websocket" in any case: c | 0x20 equals a lower-case letter only for that letter in either
 *  case, so the bytes are compared 8 at a time (Wasm loads need no alignment). */
function isToken(p: usize): bool {
  return (load<u64>(p) | 0x2020202020202020) == TOKEN_0_7 && (u32(load<u8>(p, 8)) | 0x20) == TOKEN_8;
}
