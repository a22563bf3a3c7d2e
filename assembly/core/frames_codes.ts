// RFC 6455 codes for the frame parser (./frames): opcodes, verdicts and rule details, close-code validity (§7.4),
// and a close-frame builder. PURE: no SDK, no host, no filter imports. Everything is re-exported by ./frames.
import { utf8Encode } from "./utf8";

export namespace Opcode {
  export const CONTINUATION: u8 = 0x0;
  export const TEXT: u8 = 0x1;
  export const BINARY: u8 = 0x2;
  export const CLOSE: u8 = 0x8;
  export const PING: u8 = 0x9;
  export const PONG: u8 = 0xA;
}

/** Verdict classes; closeCodeFor() maps them to the close code to send. */
export namespace Violation {
  export const NONE: u8 = 0;
  export const PROTOCOL: u8 = 1;        // → 1002
  export const FRAME_TOO_BIG: u8 = 2;   // → 1009
  export const MESSAGE_TOO_BIG: u8 = 3; // → 1009
  export const DESYNC: u8 = 4;          // caller broke the chunk protocol → 1011 (or stop inspecting: fail open)
}

/** Which rule was broken (for logs and tests). Everything not listed below maps to Violation.PROTOCOL. */
export namespace Detail {
  export const NONE: u8 = 0;
  export const FRAME_AFTER_CLOSE: u8 = 1;       // any frame after a close frame
  export const RESERVED_OPCODE: u8 = 2;         // opcodes 3–7, 11–15
  export const RSV_BITS: u8 = 3;                // RSV2/RSV3, or RSV1 not allowed here
  export const CONTROL_FRAGMENTED: u8 = 4;      // control frame without FIN
  export const UNEXPECTED_CONTINUATION: u8 = 5; // continuation with no open message
  export const EXPECTED_CONTINUATION: u8 = 6;   // text/binary while a fragmented message is open
  export const MASK_MISSING: u8 = 7;            // client frame not masked
  export const MASK_UNEXPECTED: u8 = 8;         // server frame masked
  export const CONTROL_TOO_LONG: u8 = 9;        // control payload > 125
  export const LENGTH_MSB: u8 = 10;             // 64-bit length with the most significant bit set
  export const LENGTH_NOT_MINIMAL: u8 = 11;     // 16-bit length < 126 or 64-bit length < 65536
  export const CLOSE_ONE_BYTE: u8 = 12;         // close payload of exactly 1 byte
  export const CLOSE_CODE_INVALID: u8 = 13;     // close code outside §7.4
  export const FRAME_TOO_BIG: u8 = 14;          // → Violation.FRAME_TOO_BIG
  export const MESSAGE_TOO_BIG: u8 = 15;        // → Violation.MESSAGE_TOO_BIG
  export const DESYNC: u8 = 16;                 // → Violation.DESYNC
}

/** Close code for a verdict: NONE 1000, PROTOCOL 1002, FRAME/MESSAGE_TOO_BIG 1009, DESYNC 1011. */
export function closeCodeFor(violation: u8): u16 {
  if (violation == Violation.PROTOCOL) return 1002;
  if (violation == Violation.FRAME_TOO_BIG || violation == Violation.MESSAGE_TOO_BIG) return 1009;
  if (violation == Violation.DESYNC) return 1011;
  return 1000;
}

/** Short static text for a Detail (string literals: no allocation). Usable as a close reason. */
export function detailText(detail: u8): string {
  switch (detail) {
    case Detail.NONE: return "";
    case Detail.FRAME_AFTER_CLOSE: return "frame after close";
    case Detail.RESERVED_OPCODE: return "reserved opcode";
    case Detail.RSV_BITS: return "reserved bits set";
    case Detail.CONTROL_FRAGMENTED: return "fragmented control frame";
    case Detail.UNEXPECTED_CONTINUATION: return "unexpected continuation frame";
    case Detail.EXPECTED_CONTINUATION: return "expected continuation frame";
    case Detail.MASK_MISSING: return "client frame not masked";
    case Detail.MASK_UNEXPECTED: return "server frame masked";
    case Detail.CONTROL_TOO_LONG: return "control frame too long";
    case Detail.LENGTH_MSB: return "invalid payload length";
    case Detail.LENGTH_NOT_MINIMAL: return "non-minimal payload length";
    case Detail.CLOSE_ONE_BYTE: return "invalid close payload";
    case Detail.CLOSE_CODE_INVALID: return "invalid close code";
    case Detail.FRAME_TOO_BIG: return "frame too big";
    case Detail.MESSAGE_TOO_BIG: return "message too big";
    case Detail.DESYNC: return "internal error";
  }
  return "unknown";
}

/** Close code used in counters when a close frame carried no body ("no status received", never sent on the wire). */
export const CLOSE_NO_STATUS: u16 = 1005;

/** Largest close-reason length in bytes: a control payload is at most 125 bytes, 2 of which are the code. */
export const CLOSE_REASON_MAX: i32 = 123;

/**
 * Close codes a peer may put on the wire (RFC 6455 §7.4.1, §7.4.2 and the IANA registry):
 * 1000–1003, 1007–1011, 1012–1014 (registered, in common use), 3000–4999.
 * Invalid: < 1000, 1004 (reserved), 1005/1006/1015 (never on the wire), 1016–2999 (unassigned), ≥ 5000.
 */
export function isValidCloseCode(code: u32): bool {
  if (code >= 3000 && code <= 4999) return true;
  if (code >= 1000 && code <= 1003) return true;
  if (code >= 1007 && code <= 1014) return true;
  return false;
}

/**
 * One complete close frame (FIN, opcode 8).
 * - `code`: 0 or any code that isValidCloseCode() rejects produces an empty body (the reason is then ignored),
 *   so the builder can never put an invalid code on the wire.
 * - `reason`: UTF-8, cut to at most 123 bytes on a code-point boundary.
 * - `masked`: true for frames that travel client → server (e.g. a close the filter injects toward the upstream on
 *   behalf of the client); `maskKey` is then written big-endian (first wire byte = maskKey >>> 24) and applied.
 *   Server → client frames must be unmasked (`masked` false; `maskKey` ignored).
 * Allocates (the reason's UTF-8 copy and the result): for the rare close path only, not for the per-chunk path.
 */
export function buildCloseFrame(code: u16, reason: string, masked: bool, maskKey: u32): ArrayBuffer {
  let withCode = code != 0 && isValidCloseCode(<u32>code);
  let rlen: i32 = 0;
  let enc = utf8Encode(reason);
  let encPtr = changetype<usize>(enc);
  if (withCode) {
    rlen = enc.byteLength;
    if (rlen > CLOSE_REASON_MAX) {
      rlen = CLOSE_REASON_MAX;
      // byte rlen is the first one dropped; if it continues a code point, drop that whole code point too
      while (rlen > 0 && (load<u8>(encPtr + <usize>rlen) & 0xC0) == 0x80) rlen--;
    }
  }
  let plen: i32 = 0;
  if (withCode) plen = 2 + rlen;
  let hlen: i32 = 2;
  if (masked) hlen = 6;
  let out = new ArrayBuffer(hlen + plen);
  let p = changetype<usize>(out);
  store<u8>(p, 0x88);
  let b1: u32 = <u32>plen;
  if (masked) b1 |= 0x80;
  store<u8>(p + 1, <u8>b1);
  if (masked) {
    store<u8>(p + 2, <u8>(maskKey >>> 24));
    store<u8>(p + 3, <u8>(maskKey >>> 16));
    store<u8>(p + 4, <u8>(maskKey >>> 8));
    store<u8>(p + 5, <u8>maskKey);
  }
  let q = p + <usize>hlen;
  if (withCode) {
    store<u8>(q, <u8>(code >>> 8));
    store<u8>(q + 1, <u8>code);
    if (rlen > 0) memory.copy(q + 2, encPtr, <usize>rlen);
  }
  if (masked) {
    for (let i: i32 = 0; i < plen; i++) {
      let k = <u8>(maskKey >>> (24 - ((<u32>i & 3) << 3)));
      store<u8>(q + <usize>i, load<u8>(q + <usize>i) ^ k);
    }
  }
  return out;
}
