// Soak part 3 (issue 13): random chunkings of valid WebSocket frame streams through on_request_body /
// on_response_body of the release module with frame inspection on (limits off, so every frame is valid and passes).
// One "chunking" = one random batch of frames in one direction (masked client frames, unmasked server frames,
// messages fragmented into continuation frames with pings/pongs interleaved, 7-, 16- and 64-bit lengths, RSV1 when
// permessage-deflate was negotiated) cut at random points into chunks, often 1-byte chunks through a header. Many
// batches share one connection, so the parser state also crosses batch boundaries. Checked: no trap, no host defect,
// every chunk forwarded unchanged, and the frame/message/byte/ping/pong/close-code counters equal to a reference count
// computed here from the frames generated.
import {
  H101, conn, isContinue, makeEnv, rng, upgradeHeaders, type Env, type FilterStream, type StepResult,
} from "../filter/support.ts";

export interface ChunkSummary {
  chunkings: number;
  connections: number;
  chunks: number;
  frames: number;
  messages: number;
  payloadBytes: number;
  closeHandshakes: number;
  checkpoints: number;
  traps: number;
  mismatches: number;     // counters ≠ reference, or a chunk not forwarded unchanged
  ms: number;
  violations: string[];
}

interface Ref { frames: [number, number]; messages: [number, number]; bytes: [number, number]; pings: number; pongs: number; codes: Map<string, number> }

const STAT_CODES = ["1000", "1001", "1002", "1008", "1009", "1011"];

function header(fin: boolean, rsv1: boolean, op: number, len: number, mask: Uint8Array | null): Uint8Array {
  const ext = len < 126 ? 0 : len < 65536 ? 2 : 8;
  const h = new Uint8Array(2 + ext + (mask ? 4 : 0));
  h[0] = (fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | op;
  h[1] = (mask ? 0x80 : 0) | (ext === 0 ? len : ext === 2 ? 126 : 127);
  if (ext === 2) { h[2] = len >> 8; h[3] = len & 255; }
  if (ext === 8) { const dv = new DataView(h.buffer); dv.setBigUint64(2, BigInt(len)); }
  if (mask) h.set(mask, 2 + ext);
  return h;
}

export function soakChunkings(chunkings: number, seed: number): ChunkSummary {
  const rand = rng(seed);
  const pick = (n: number) => Math.floor(rand() * n);
  const e: Env = makeEnv({
    concurrency: 2,
    process: { defects: "record" },
    config: {
      rate_limit: null, max_connections_per_pod: 0,
      frames: { enabled: true, max_frame_bytes: 0, max_message_bytes: 0, messages_per_second: 0 },
    },
  });
  const out: ChunkSummary = { chunkings: 0, connections: 0, chunks: 0, frames: 0, messages: 0, payloadBytes: 0,
    closeHandshakes: 0, checkpoints: 0, traps: 0, mismatches: 0, ms: 0, violations: [] };
  const ref: Ref = { frames: [0, 0], messages: [0, 0], bytes: [0, 0], pings: 0, pongs: 0, codes: new Map() };
  const bad = (msg: string) => {
    out.mismatches++;
    if (out.violations.length < 10) out.violations.push(`chunking ${out.chunkings}: ${msg}`);
  };
  const payloadPool = new Uint8Array(70_000).map(() => pick(256));

  /** One frame; counts it in the reference. dir 0 = client → pod (masked), 1 = pod → client. */
  const frame = (parts: Uint8Array[], dir: 0 | 1, fin: boolean, rsv1: boolean, op: number, len: number) => {
    const mask = dir === 0 ? Uint8Array.of(pick(256), pick(256), pick(256), pick(256)) : null;
    parts.push(header(fin, rsv1, op, len, mask));
    if (len > 0) {
      const off = pick(payloadPool.length - len + 1);
      parts.push(payloadPool.subarray(off, off + len)); // masked or not, the payload bytes are arbitrary
    }
    ref.frames[dir]++;
    ref.bytes[dir] += len;
    if (op === 9) ref.pings++;
    if (op === 10) ref.pongs++;
  };
  const dataLen = () => { const k = rand(); return k < 0.75 ? pick(126) : k < 0.99 ? 126 + pick(2000) : 65536 + pick(4000); };
  const control = (parts: Uint8Array[], dir: 0 | 1) => frame(parts, dir, true, false, pick(2) ? 9 : 10, pick(126));
  /** A batch of 1–4 messages (each 1–4 fragments, control frames between fragments) and loose control frames. */
  const batch = (dir: 0 | 1, deflate: boolean): Uint8Array => {
    const parts: Uint8Array[] = [];
    for (let m = 1 + pick(4); m > 0; m--) {
      if (pick(4) === 0) control(parts, dir);
      const frags = pick(3) === 0 ? 2 + pick(3) : 1;
      const rsv1 = deflate && pick(2) === 0;
      for (let f = 0; f < frags; f++) {
        frame(parts, dir, f === frags - 1, rsv1 && f === 0, f === 0 ? 1 + pick(2) : 0, dataLen());
        if (f < frags - 1 && pick(3) === 0) control(parts, dir);
      }
      ref.messages[dir]++;
    }
    return Buffer.concat(parts);
  };
  /** Random cut points: a few anywhere, sometimes 1-byte chunks through the first bytes (a header). */
  const cuts = (bytes: Uint8Array): Uint8Array[] => {
    const n = bytes.length;
    const at = new Set<number>();
    for (let k = pick(6); k > 0; k--) at.add(1 + pick(Math.max(1, n - 1)));
    if (pick(4) === 0) for (let k = 1; k < Math.min(n, 15); k++) at.add(k);
    const points = [...at].filter((p) => p > 0 && p < n).sort((a, b) => a - b);
    const chunks: Uint8Array[] = [];
    let prev = 0;
    for (const p of points) { chunks.push(bytes.subarray(prev, p)); prev = p; }
    chunks.push(bytes.subarray(prev));
    return chunks;
  };
  const feed = (s: FilterStream, dir: 0 | 1, bytes: Uint8Array): boolean => {
    for (const c of cuts(bytes)) {
      out.chunks++;
      const r: StepResult = dir === 0 ? s.decodeData(c, false) : s.encodeData(c, false);
      if (r.kind !== "continue") { bad(`chunk of ${c.length} B (${dir ? "upstream" : "downstream"}) → ${r.kind}`); return false; }
      const d = r.data;
      if (d && (d.length !== c.length || Buffer.compare(Buffer.from(d), Buffer.from(c)) !== 0)) {
        bad(`chunk of ${c.length} B forwarded changed (${d.length} B)`);
        return false;
      }
    }
    return true;
  };
  const closeFrame = (dir: 0 | 1, code: number): Uint8Array => {
    const parts: Uint8Array[] = [];
    const mask = dir === 0 ? Uint8Array.of(pick(256), pick(256), pick(256), pick(256)) : null;
    const body = code === 1005 ? new Uint8Array(0) : Uint8Array.of(code >> 8, code & 255, 0x62, 0x79, 0x65);
    const masked = mask ? body.map((b, i) => b ^ mask[i & 3]) : body;
    parts.push(header(true, false, 8, body.length, mask), masked);
    ref.frames[dir]++;
    ref.bytes[dir] += body.length;
    const k = code === 1005 ? "other" : STAT_CODES.includes(String(code)) ? String(code) : "other";
    ref.codes.set(k, (ref.codes.get(k) ?? 0) + 1);
    return Buffer.concat(parts);
  };
  const checkpoint = () => {
    out.checkpoints++;
    const dirs = ["downstream", "upstream"];
    const pairs: Array<[string, number]> = [];
    for (let d = 0; d < 2; d++) {
      pairs.push([`frames_total.direction.${dirs[d]}`, ref.frames[d]], [`messages_total.direction.${dirs[d]}`, ref.messages[d]],
        [`bytes_total.direction.${dirs[d]}`, ref.bytes[d]]);
    }
    pairs.push(["control_frames_total.kind.ping", ref.pings], ["control_frames_total.kind.pong", ref.pongs]);
    for (const c of [...STAT_CODES, "other"]) pairs.push([`close_frames_total.code.${c}`, ref.codes.get(c) ?? 0]);
    pairs.push(["frame_resets_total", 0], ["active_connections", 0]);
    for (const [k, want] of pairs) {
      const got = e.stat(k);
      if (got !== want) bad(`${k} = ${got}, reference ${want}`);
    }
    for (let w = 0; w < 2; w++) if (e.h.vmFailed(w)) { out.traps++; bad(`worker ${w} trapped`); }
  };

  const t0 = performance.now();
  try {
    while (out.chunkings < chunkings) {
      out.connections++;
      const s = e.h.newStream(pick(2), conn(`10.1.${pick(250)}.${pick(250)}:${1024 + pick(60000)}`));
      if (!isContinue(s.decodeHeaders(upgradeHeaders(), false))) { bad("upgrade refused"); break; }
      const deflate = pick(2) === 0;
      const h101 = deflate ? [...H101, ["sec-websocket-extensions", "permessage-deflate"] as [string, string]] : H101;
      if (!isContinue(s.encodeHeaders(h101, false))) { bad("101 refused"); break; }
      let alive = true;
      for (let b = 1 + pick(40); b > 0 && alive && out.chunkings < chunkings; b--) {
        out.chunkings++;
        const dir = pick(2) as 0 | 1;
        alive = feed(s, dir, batch(dir, deflate));
      }
      if (!alive) { if (!s.ended) s.reset("soak"); continue; }
      const how = pick(4);
      if (how === 0) { // close handshake: one side closes, the other replies, then the stream completes
        out.closeHandshakes++;
        const first = pick(2) as 0 | 1;
        const codes = [1000, 1001, 1005, 1011, 3000, 4999, 1008];
        feed(s, first, closeFrame(first, codes[pick(codes.length)]));
        feed(s, (1 - first) as 0 | 1, closeFrame((1 - first) as 0 | 1, codes[pick(codes.length)]));
        if (!s.ended) s.complete();
      } else if (how === 1) s.reset("downstream_remote_disconnect");
      else s.complete();
      if (out.connections % 50 === 0) checkpoint();
    }
    checkpoint();
    if ((e.proc.defects?.length ?? 0) > 0) bad(`host defects: ${e.proc.defects!.map((d) => d.message).join("; ").slice(0, 300)}`);
  } finally {
    out.ms = performance.now() - t0;
    out.frames = ref.frames[0] + ref.frames[1];
    out.messages = ref.messages[0] + ref.messages[1];
    out.payloadBytes = ref.bytes[0] + ref.bytes[1];
    e.close();
  }
  return out;
}
