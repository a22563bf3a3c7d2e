import { utf8Encode, utf8Decode, utf8Is } from "../../assembly/core/utf8";

/** The bytes of an encoding as hex. */
function enc(s: string): string {
  const b = utf8Encode(s);
  const p = changetype<usize>(b);
  let out = "";
  for (let i = 0; i < b.byteLength; i++) {
    const v = load<u8>(p + i);
    out += (v < 16 ? "0" : "") + v.toString(16);
  }
  return out;
}

/** Decodes the bytes given as hex. */
function dec(hex: string): string {
  const n = hex.length >> 1;
  const buf = new ArrayBuffer(n);
  const p = changetype<usize>(buf);
  for (let i = 0; i < n; i++) store<u8>(p + i, u8(I32.parseInt(hex.substring(2 * i, 2 * i + 2), 16)));
  return utf8Decode(p, n);
}

/** The UTF-16 code units of s as hex, for comparing strings that hold U+FFFD or surrogates. */
function units(s: string): string {
  let out = "";
  for (let i = 0; i < s.length; i++) {
    if (i > 0) out += " ";
    out += s.charCodeAt(i).toString(16);
  }
  return out;
}

describe("utf8", () => {
  it("encodes 1-, 2-, 3- and 4-byte forms", () => {
    expect(enc("")).toBe("");
    expect(enc("A~")).toBe("417e");
    expect(enc("\u00e9")).toBe("c3a9");
    expect(enc("\u07ff\u0800")).toBe("dfbfe0a080");
    expect(enc("\u20ac")).toBe("e282ac");
    expect(enc("\ud83d\ude00")).toBe("f09f9880"); // U+1F600
    expect(enc("\udbff\udfff")).toBe("f48fbfbf"); // U+10FFFF
  });
  it("encodes lone surrogates as 3 bytes (WTF-8)", () => {
    expect(enc("\ud800")).toBe("eda080");
    expect(enc("a\udc00b")).toBe("61edb08062");
    expect(enc("\ud800\ud800")).toBe("eda080eda080");
  });
  it("decodes what it encodes, lone surrogates included", () => {
    const samples = ["", "pod-a", "caf\u00e9", "\u20ac100", "\ud83d\ude00!", "\ud800x", "x\udfff", "\u0000nul"];
    for (let i = 0; i < samples.length; i++) {
      const b = utf8Encode(samples[i]);
      expect(utf8Decode(changetype<usize>(b), b.byteLength)).toBe(samples[i]);
    }
  });
  it("decodes valid input", () => {
    expect(dec("68656c6c6f")).toBe("hello");
    expect(units(dec("f09f9880"))).toBe("d83d de00");
    expect(units(dec("e282ac"))).toBe("20ac");
  });
  it("turns malformed sequences into U+FFFD and resumes", () => {
    expect(units(dec("ff41"))).toBe("fffd 41");           // invalid lead byte
    expect(units(dec("80bf"))).toBe("fffd fffd");         // stray continuation bytes
    expect(units(dec("c0af"))).toBe("fffd fffd");         // overlong '/' (C0 is never a lead)
    expect(units(dec("e08080"))).toBe("fffd fffd fffd");  // overlong 3-byte NUL: lead rejected after the check
    expect(units(dec("c3"))).toBe("fffd");                // truncated at the end
    expect(units(dec("e28241"))).toBe("fffd fffd 41");    // missing third byte: lead, then the lone continuation
    expect(units(dec("f4908080"))).toBe("fffd fffd fffd fffd"); // above U+10FFFF
    expect(units(dec("f5"))).toBe("fffd");
  });
  it("utf8Is: the bytes are the string's encoding exactly (in place while ASCII, encoded from the first other character)", () => {
    const b = utf8Encode("/websocket/metrics");
    const p = changetype<usize>(b);
    expect(utf8Is(p, b.byteLength, "/websocket/metrics")).toBe(true);
    expect(utf8Is(p, b.byteLength - 1, "/websocket/metrics")).toBe(false); // a prefix
    expect(utf8Is(p, b.byteLength, "/websocket/metricz")).toBe(false);
    expect(utf8Is(p, 0, "")).toBe(true);
    const e = utf8Encode("pod-\u00e9");
    const q = changetype<usize>(e);
    expect(utf8Is(q, e.byteLength, "pod-\u00e9")).toBe(true);
    expect(utf8Is(q, e.byteLength, "pod-\u00c3\u00a9")).toBe(false); // the bytes C3 A9 read as Latin-1 characters
    expect(utf8Is(q, e.byteLength, "pod-ab")).toBe(false);               // same length in bytes, ASCII
    expect(utf8Is(q, e.byteLength, "pox-\u00e9")).toBe(false);          // differs before the non-ASCII character
    expect(utf8Is(q, e.byteLength - 1, "pod-\u00e9")).toBe(false);      // a truncated encoding
    const bad = dec("ff");                                                 // U+FFFD, decoded from an invalid byte
    const ff = new ArrayBuffer(1);
    store<u8>(changetype<usize>(ff), 0xff);
    expect(utf8Is(changetype<usize>(ff), 1, bad)).toBe(false);            // not the encoding of U+FFFD (EF BF BD)
  });
});
