import { base64Encode, base64Decode } from "../../assembly/core/base64";
import { utf8Encode } from "../../assembly/core/utf8";

function enc(s: string): string {
  const b = utf8Encode(s);
  return base64Encode(changetype<usize>(b), b.byteLength);
}

function dec(s: string): string | null {
  const b = base64Decode(s);
  if (b === null) return null;
  return String.UTF8.decode(b);
}

describe("base64 (RFC 4648 §4)", () => {
  it("encodes the RFC 4648 §10 test vectors", () => {
    expect(enc("")).toBe("");
    expect(enc("f")).toBe("Zg==");
    expect(enc("fo")).toBe("Zm8=");
    expect(enc("foo")).toBe("Zm9v");
    expect(enc("foob")).toBe("Zm9vYg==");
    expect(enc("fooba")).toBe("Zm9vYmE=");
    expect(enc("foobar")).toBe("Zm9vYmFy");
  });
  it("decodes them back", () => {
    expect(dec("") as string).toBe("");
    expect(dec("Zg==") as string).toBe("f");
    expect(dec("Zm8=") as string).toBe("fo");
    expect(dec("Zm9vYmFy") as string).toBe("foobar");
    expect(dec("d3NnL2ZsZWV0L3BvZC9wb2QtYQ==") as string).toBe("wsg/fleet/pod/pod-a");
  });
  it("round-trips every byte value", () => {
    const b = new ArrayBuffer(256);
    for (let i = 0; i < 256; i++) store<u8>(changetype<usize>(b) + i, u8(i));
    for (let len = 0; len <= 256; len += 37) {
      const s = base64Encode(changetype<usize>(b), len);
      const back = base64Decode(s);
      expect(back).not.toBeNull();
      if (back !== null) {
        expect(back.byteLength).toBe(len);
        for (let i = 0; i < len; i++) expect(load<u8>(changetype<usize>(back) + i)).toBe(u8(i));
      }
    }
    expect(base64Encode(changetype<usize>(b) + 251, 5)).toBe("+/z9/v8=");
  });
  it("refuses what is not canonical padded base64", () => {
    expect(base64Decode("Zg=")).toBeNull();       // length
    expect(base64Decode("Zg")).toBeNull();        // no padding
    expect(base64Decode("Z===")).toBeNull();      // three pads
    expect(base64Decode("Zg=a")).toBeNull();      // pad inside
    expect(base64Decode("Zg==Zg==")).toBeNull();  // pad before the end
    expect(base64Decode("Zm9v YmFy")).toBeNull(); // space
    expect(base64Decode("Zh==")).toBeNull();      // bits under the padding
    expect(base64Decode("Zm9-")).toBeNull();      // URL alphabet
  });
});
