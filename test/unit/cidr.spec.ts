import { parseCidr, allowed, hostOf, Cidr } from "../../assembly/core/cidr";

function list2(a: string, b: string): Array<Cidr> {
  const l = new Array<Cidr>(0);
  l.push(parseCidr(a) as Cidr);
  l.push(parseCidr(b) as Cidr);
  return l;
}

/** The 16 address bytes of a parsed CIDR, as hex, for exact comparisons. */
function hex(s: string): string {
  const c = parseCidr(s);
  if (c === null) return "null";
  let out = "";
  for (let i = 0; i < 16; i++) {
    const b = c.addr[i];
    out += (b < 16 ? "0" : "") + b.toString(16);
  }
  return out;
}

describe("cidr", () => {
  it("places IPv6 groups around \"::\" exactly", () => {
    expect(hex("::")).toBe("00000000000000000000000000000000");
    expect(hex("::1")).toBe("00000000000000000000000000000001");
    expect(hex("1::")).toBe("00010000000000000000000000000000");
    expect(hex("1::8")).toBe("00010000000000000000000000000008");
    expect(hex("a:b::c:d")).toBe("000a000b0000000000000000000c000d");
    expect(hex("1:2:3:4:5:6:7:8")).toBe("00010002000300040005000600070008");
    expect(hex("1:2:3:4:5:6:7::")).toBe("00010002000300040005000600070000");
    expect(hex("::2:3:4:5:6:7:8")).toBe("00000002000300040005000600070008");
    expect(hex("2001:DB8::Ff")).toBe("20010db80000000000000000000000ff");
    expect(hex("10.1.2.3")).toBe("00000000000000000000ffff0a010203");
  });
  it("rejects malformed IPv6", () => {
    expect(hex("1:2:3:4:5:6:7:8:9")).toBe("null");
    expect(hex("1:2:3:4:5:6:7:8::")).toBe("null");
    expect(hex("::1:2:3:4:5:6:7:8")).toBe("null");
    expect(hex("1:2:3:4:5:6:7")).toBe("null");
    expect(hex(":1")).toBe("null");
    expect(hex("1:")).toBe("null");
    expect(hex(":")).toBe("null");
    expect(hex(":::")).toBe("null");
    expect(hex("1:::2")).toBe("null");
    expect(hex("1::2::3")).toBe("null");
    expect(hex("1::g")).toBe("null");
    expect(hex("::ffff:1.2.3.4")).toBe("null"); // dotted tail not supported (not an Envoy source form)
  });

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
