// Fleet mode (fleet module only): the global rate limit across Envoy processes (docs/fleet.md §3.4). Placeholder:
// every upgrade passes this stage (the per-process GCRA in stream.ts still applies).
import { EtcdReply } from "../core/etcd";
import { Root } from "./root";
import { Stream } from "./stream";
import { PASS } from "./fleet_wait";

/** The global rate stage of an upgrade: PASS, WAIT (queued; woken through fleet_wait.ts) or DONE (refused). */
export function rateStage(s: Stream): i32 {
  return PASS;
}

/** A call answer for this VM's rate chain. False: not one of its tokens. */
export function rateAnswer(root: Root, token: u32, status: u32, rep: EtcdReply): bool {
  return false;
}

export function rateTick(root: Root): void {}
