// Fleet mode (fleet module only): the global admission of an upgrade, in stages: the fleet's rate limit, the
// client's cap, the pod's cap (docs/fleet.md §4.2). Each stage either passes, queues the stream on an etcd chain
// (the request stays stopped) or decides. A woken stream runs again from the stage it waited in.
import { Mode } from "../core/config";
import { bucketOf } from "../core/ledger";
import { FleetStream } from "./fleet_stream";
import { keyValue } from "./keys";
import { PASS, DONE, ST_RATE } from "./fleet_wait";
import { rateStage } from "./fleet_rate";
import { limitStage } from "./fleet_limit";
import { podId, POD, CLIENT } from "./fleet_grant";

const ST_CLIENT: u8 = 2;
const ST_POD: u8 = 3;
/** Mode upstream: the pod's cap at the 101 (the pod is upstream.address, known only then). */
export const ST_RESPONSE: u8 = 4;

export function fleetAdmit(s: FleetStream): i32 {
  const root = s.root;
  const cfg = root.config;
  if (s.fleetStage == ST_RESPONSE) return limitStage(s, POD);
  if (s.fleetStage == 0) { // first pass: the client's bucket while the request headers are at hand
    if (cfg.maxPerClient > 0) {
      s.fleetKey = keyValue(cfg.clientKey, root.clientMetaPath);
      s.fleetBucket = bucketOf(s.fleetKey, cfg.clientBuckets);
    }
    s.fleetStage = ST_RATE;
  }
  if (s.fleetStage == ST_RATE) {
    const r = rateStage(s);
    if (r != PASS) return r;
    s.fleetStage = ST_CLIENT;
  }
  if (s.fleetStage == ST_CLIENT) {
    if (cfg.maxPerClient > 0) {
      const r = limitStage(s, CLIENT);
      if (r != PASS) return r;
    }
    s.fleetStage = ST_POD;
  }
  if (cfg.mode != Mode.Inbound) return PASS; // upstream mode: the pod's slot is taken at the 101, per process
  if (cfg.maxPerPod > 0) {
    s.fleetPod = podId(root.pod);
    return limitStage(s, POD);
  }
  return s.acquirePodSlot(root.pod) ? PASS : DONE;
}

/** Mode upstream, at the 101: the pod's global cap (s.pod = upstream.address). */
export function fleetAdmitResponse(s: FleetStream): i32 {
  s.fleetStage = ST_RESPONSE;
  s.fleetPod = podId(s.pod);
  s.fleetSince = 0;
  return fleetAdmit(s);
}
