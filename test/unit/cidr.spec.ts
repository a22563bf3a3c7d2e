import { parseCidr, allowed, hostOf, Cidr } from "../../assembly/core/cidr";

function list2(a: string, b: string): Array<Cidr> {
  const l = new Array<Cidr>(0);
  l.push(parseCidr(a) as Cidr);
  l.push(parseCidr(b) as Cidr);
  return l;
}

describe("cidr", () => {
  it("parses v4, v6 and prefixes", () => {
    expect(parseCidr("127.0.0.1")).not.toBeNull();
    expect(parseCidr("10.0.0.0/8")).not.toBeNull();
    expect(parseCidr("::1/128")).not.toBeNull();
    expect(parseCidr("fd00::/8")).not.toBeNull();
    expect(parseCidr("2001:db8::1")).not.toBeNull();
    expect(parseCidr("::")).not.toBeNull();
  });
  it("rejects malformed input", () => {
    expect(parseCidr("")).toBeNull();
    expect(parseCidr("256.0.0.1")).toBeNull();
    expect(parseCidr("1.2.3")).toBeNull();
    expect(parseCidr("1.2.3.4/33")).toBeNull();
    expect(parseCidr("1.2.3.4/")).toBeNull();
    expect(parseCidr("01.2.3.4")).toBeNull();
    expect(parseCidr("1::2::3")).toBeNull();
    expect(parseCidr("12345::")).toBeNull();
    expect(parseCidr("localhost")).toBeNull();
  });
  it("extracts the host from Envoy's address forms", () => {
    expect(hostOf("10.1.2.3:4567")).toBe("10.1.2.3");
    expect(hostOf("[::1]:80")).toBe("::1");
    expect(hostOf("::1")).toBe("::1");
    expect(hostOf("10.1.2.3")).toBe("10.1.2.3");
  });
  it("matches addresses against the default loopback allowlist", () => {
    const l = list2("127.0.0.0/8", "::1/128");
    expect(allowed(l, "127.0.0.1:5000")).toBe(true);
    expect(allowed(l, "127.255.1.2:1")).toBe(true);
    expect(allowed(l, "[::1]:5000")).toBe(true);
    expect(allowed(l, "10.0.0.1:5000")).toBe(false);
    expect(allowed(l, "[::2]:5000")).toBe(false);
    expect(allowed(l, "garbage")).toBe(false);
    expect(allowed(l, "")).toBe(false);
  });
  it("matches partial-byte prefixes", () => {
    const l = list2("10.64.0.0/10", "fd00::/7");
    expect(allowed(l, "10.127.255.255:1")).toBe(true);
    expect(allowed(l, "10.128.0.0:1")).toBe(false);
    expect(allowed(l, "[fc12::1]:1")).toBe(true);
    expect(allowed(l, "[fe00::1]:1")).toBe(false);
  });
});
