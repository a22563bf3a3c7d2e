// WebSocket upgrade detection as Envoy presents requests to filters (envoy-host.md §8.2, §8.3): an HTTP/1.1
// upgrade, or an HTTP/2 extended CONNECT that Envoy's codec already rewrote into the same GET form. Pure.

/** True when the comma-separated header value holds `token` (case-insensitive, optional whitespace around items). */
export function hasToken(value: string, token: string): bool {
  const n = value.length;
  let i = 0;
  while (i <= n) {
    let end = value.indexOf(",", i);
    if (end < 0) end = n;
    let a = i;
    let b = end;
    while (a < b && isOws(value.charCodeAt(a))) a++;
    while (b > a && isOws(value.charCodeAt(b - 1))) b--;
    if (b - a == token.length && equalsIgnoreCase(value, a, token)) return true;
    i = end + 1;
  }
  return false;
}

function isOws(c: i32): bool { return c == 0x20 || c == 0x09; }

function equalsIgnoreCase(s: string, at: i32, token: string): bool {
  for (let k = 0; k < token.length; k++) {
    let c = s.charCodeAt(at + k);
    if (c >= 0x41 && c <= 0x5a) c += 0x20;
    if (c != token.charCodeAt(k)) return false; // token is given in lower case
  }
  return true;
}

/** `upgrade` must hold the token "websocket" and `connection` the token "upgrade". */
export function isWebSocketUpgrade(upgrade: string, connection: string): bool {
  return hasToken(upgrade, "websocket") && hasToken(connection, "upgrade");
}
