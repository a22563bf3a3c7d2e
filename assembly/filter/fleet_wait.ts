// Fleet mode (fleet module only): how an upgrade waits for etcd. The fleet admission runs in stages (global rate,
// client, pod; fleet_admit.ts). A stage that finds no local room queues the stream on a chain of etcd calls and the
// request stays stopped (StopIteration). When the chain ends it *wakes* its streams with a verdict; the dispatcher
// (fleet.ts) then runs each woken stream's admission again under its own context, from the stage it waited in.
import { FleetStream } from "./fleet_stream";

/** A stage's result. PASS: go on (the last stage's PASS continues the request); WAIT: queued on a chain; DONE:
 *  decided without continuing (a local reply was sent). */
export const PASS: i32 = 0;
export const WAIT: i32 = 1;
export const DONE: i32 = 2;

/** The stage of an upgrade (FleetStream.fleetStage) in which it waits for the rate chain. */
export const ST_RATE: u8 = 1;

/** What a chain tells its waiters. */
export const V_NONE: u8 = 0;    // not woken by a chain (first pass)
export const V_GRANTED: u8 = 1; // etcd granted something: look again locally
export const V_FULL: u8 = 2;    // a fresh etcd snapshot shows no room: refuse
export const V_FAILED: u8 = 3;  // etcd could not help: failure_mode

// Created on first use: this file is reachable from the local module's sources (folded away there).
let woken: Array<u32> | null = null;

export function wake(s: FleetStream, verdict: u8): void {
  if (s.finished) return;
  s.fleetVerdict = verdict;
  let w = woken;
  if (w === null) { w = new Array<u32>(0); woken = w; }
  w.push(s.id);
}

/** The streams woken since the last call (the caller runs their admission again). */
export function takeWoken(): Array<u32> {
  const w = woken;
  if (w === null || w.length == 0) return new Array<u32>(0);
  woken = new Array<u32>(0);
  return w;
}
