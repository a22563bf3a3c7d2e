// JSON strings (assembly/core/json.ts str()): escapes decoded, errors at the offending offset, long runs of escapes.
import { parseJson, jsonError, JType } from "../../assembly/core/json";

/** The value of key "a" in {"a": <literal>} as a string, or "ERR: " + the parser's error. */
function strOf(literal: string): string {
  const v = parseJson("{\"a\":" + literal + "}");
  if (v === null) return "ERR: " + jsonError;
  const a = v.get("a");
  if (a === null || a.type != JType.Str) return "ERR: not a string";
  return a.s;
}

describe("json strings", () => {
  it("decodes every escape, keys included", () => {
    expect(strOf("\"plain\"")).toBe("plain");
    expect(strOf("\"\"")).toBe("");
    expect(strOf("\"a\\\"b\\\\c\\/d\"")).toBe("a\"b\\c/d");
    expect(strOf("\"\\b\\f\\n\\r\\t\"")).toBe("\b\f\n\r\t");
    expect(strOf("\"\\u0041\\u00e9x\\uD83D\\uDE00\"")).toBe("A\u00e9x\ud83d\ude00");
    const v = parseJson("{\"k\\u0065y\":1}");
    expect(v).not.toBeNull();
    if (v !== null) expect(v.get("key")).not.toBeNull();
  });
  it("errors name the offset of the offending character, as before", () => {
    expect(strOf("\"ab\\x\"")).toBe("ERR: bad escape at offset 9");
    expect(strOf("\"ab\\u12g4\"")).toBe("ERR: bad \\u escape at offset 10");
    expect(strOf("\"ab\ncd\"")).toBe("ERR: control character in string at offset 8");
    expect(strOf("\"ab\\")).toBe("ERR: bad escape at offset 9"); // the backslash escapes the closing brace
    expect(parseJson("{\"a\":\"ab\\") === null && jsonError == "unterminated string at offset 9").toBe(true);
    expect(parseJson("{\"a\":\"abc") === null && jsonError == "unterminated string at offset 9").toBe(true);
  });
  it("a long run of escapes decodes in one piece (it used to take quadratic time)", () => {
    let lit = "\"";
    let want = "";
    for (let i = 0; i < 2000; i++) { lit += "\\n\\u0041"; want += "\nA"; }
    lit += "\"";
    const got = strOf(lit);
    expect(got.length).toBe(4000);
    expect(got == want).toBe(true);
  });
});
