import { isWebSocketUpgrade } from "../../assembly/core/upgrade";

// Only `upgrade` is read: Envoy strips `upgrade`/`connection` before the filters from any request whose `connection`
// lacks the "upgrade" token (envoy-host.md §8.1, §8.2; test/emulator/proxy models that HCM step).
function up(value: string): bool {
  const b = String.UTF8.encode(value);
  return isWebSocketUpgrade(changetype<usize>(b), b.byteLength);
}

describe("upgrade detection (envoy-host.md §8.2, §8.3)", () => {
  it("accepts the canonical value, ASCII case-insensitive", () => {
    expect(up("websocket")).toBe(true);
    expect(up("WebSocket")).toBe(true);
    expect(up("WEBSOCKET")).toBe(true);
  });
  it("accepts token lists with whitespace and empty items", () => {
    expect(up("h2c ,\twebsocket ")).toBe(true);
    expect(up("websocket, h2c")).toBe(true);
    expect(up(",,websocket,")).toBe(true);
  });
  it("rejects lookalike tokens, other upgrade protocols and empty values", () => {
    expect(up("websockets")).toBe(false);
    expect(up("websocke")).toBe(false);
    expect(up("not-websocket")).toBe(false);
    expect(up("web socket")).toBe(false);
    expect(up("websocket\u00e9")).toBe(false);
    expect(up("h2c")).toBe(false);
    expect(up("")).toBe(false);
    expect(up(",")).toBe(false);
  });
  it("bytes that only look like letters after | 0x20 do not match", () => {
    expect(up("WEBSOCKE\u0014")).toBe(false); // 0x14 | 0x20 = 0x34, not 't'
    expect(up("wEbSoCkEt")).toBe(true);
  });
  it("every one of the 9 bytes is compared (one letter changed at each position)", () => {
    const t = "websocket";
    for (let i = 0; i < t.length; i++) {
      const c = String.fromCharCode(t.charCodeAt(i) ^ 0x01);
      expect(up(t.substring(0, i) + c + t.substring(i + 1))).toBe(false);
      expect(up("x, " + t.substring(0, i) + c + t.substring(i + 1) + " ,y")).toBe(false);
    }
  });
});
