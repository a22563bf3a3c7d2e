import { hasToken, isWebSocketUpgrade } from "../../assembly/core/upgrade";

describe("upgrade detection (envoy-host.md §8.2, §8.3)", () => {
  it("accepts the canonical HTTP/1.1 pair", () => {
    expect(isWebSocketUpgrade("websocket", "Upgrade")).toBe(true);
  });
  it("is case-insensitive on both headers", () => {
    expect(isWebSocketUpgrade("WebSocket", "UPGRADE")).toBe(true);
  });
  it("accepts token lists with whitespace", () => {
    expect(isWebSocketUpgrade("websocket", "keep-alive, Upgrade")).toBe(true);
    expect(isWebSocketUpgrade("h2c ,\twebsocket ", "Upgrade ,keep-alive")).toBe(true);
  });
  it("rejects 'upgrade' inside another token", () => {
    expect(isWebSocketUpgrade("websocket", "upgrades")).toBe(false);
    expect(isWebSocketUpgrade("websocket", "keep-alive, noupgrade")).toBe(false);
    expect(isWebSocketUpgrade("websockets", "upgrade")).toBe(false);
  });
  it("rejects other upgrade protocols and empty headers", () => {
    expect(isWebSocketUpgrade("h2c", "upgrade")).toBe(false);
    expect(isWebSocketUpgrade("", "upgrade")).toBe(false);
    expect(isWebSocketUpgrade("websocket", "")).toBe(false);
    expect(isWebSocketUpgrade("websocket", ",,")).toBe(false);
  });
  it("handles empty list items", () => {
    expect(hasToken(",upgrade,", "upgrade")).toBe(true);
    expect(hasToken("a,,b", "upgrade")).toBe(false);
  });
});
