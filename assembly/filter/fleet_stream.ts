// Fleet mode (fleet module only): a stream's state in the fleet admission. The dispatcher (index.ts newStream)
// creates every stream as a FleetStream when FLEET, so the local module's Stream carries none of these fields (bench
// P4: heap per live connection). No module-level initializers: index.ts imports this file in the local module too.
import { Root } from "./root";
import { Stream } from "./stream";

export class FleetStream extends Stream {
  fleetSince: u64 = 0;       // waiting for etcd since (ms), 0 = not waiting
  fleetStage: u8 = 0;        // the admission stage reached (fleet_admit.ts)
  fleetVerdict: u8 = 0;      // what the chain this stream waited on said (fleet_wait.ts)
  fleetBucket: u32 = 0;      // the client bucket (low half; the rate bucket in the high half)
  fleetKey: string = "";     // the client key (for the rejection line)
  fleetPod: u32 = 0;         // the pod's number (fleet_limit.ts podId)

  constructor(id: u32, root: Root) { super(id, root); }
}
