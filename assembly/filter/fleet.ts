// Fleet mode (docs/fleet.md): global limits across Envoy processes through etcd. Fleet module only: every entry point
// is reached through `if (FLEET)`. This file routes: the request (fleet_admit.ts), the tick and every HTTP call's
// answer to its owner (the lease, the rate chain, a limit's chain), then runs the streams those woke.
import { parseReply } from "../core/etcd";
import { callStatus, callBody } from "../host/http";
import { Root, roots } from "./root";
import { Stream } from "./stream";
import { FleetStream } from "./fleet_stream";
import { PASS } from "./fleet_wait";
import { vmOf, keepalive, keepaliveAnswer, leaseAnswer, needLease, liveLease, L_GRANT, LEASE_WAIT } from "./fleet_lease";
import { rateAnswer, rateTick } from "./fleet_rate";
import { limitAnswer, limitsTick, leaseSettled } from "./fleet_limit";
import { fleetAdmit, fleetAdmitResponse, ST_RESPONSE } from "./fleet_admit";
import { startInspection } from "./frames";
import { setEffectiveContext } from "../host/abi";
import { continueRequest, continueResponse } from "../host/http";
import { streams } from "./stream";
import { takeWoken } from "./fleet_wait";

/** Request headers of an upgrade that passed the local checks. True: continue now; false: stopped (waiting or
 *  answered). */
export function fleetRequest(s: Stream): bool {
  const r = fleetAdmit(changetype<FleetStream>(s)); // the fleet module's streams are FleetStreams (index.ts)
  fleetResume(s.root); // a stage may have decided other streams (never in practice; cheap when none)
  return r == PASS;
}

/** Mode upstream, response headers of a 101: the pod's global cap. True: continue now (confirmed). */
export function fleetResponse(s: Stream): bool {
  const r = fleetAdmitResponse(changetype<FleetStream>(s));
  fleetResume(s.root);
  if (r != PASS) return false;
  s.confirm();
  return true;
}

/** Runs the admission of every woken stream again, each under its own context, and continues those admitted (the
 *  request, or at a 101 the response: then the upgrade is confirmed and frame inspection starts); then back to the
 *  root's context. */
function fleetResume(root: Root): void {
  for (let round = 0; round < 4; round++) {
    const todo = takeWoken();
    if (todo.length == 0) break;
    for (let i = 0; i < todo.length; i++) {
      const id = todo[i];
      if (!streams.has(id)) continue;
      const s = changetype<FleetStream>(streams.get(id));
      if (s.finished || s.replied) continue;
      if (setEffectiveContext(id) != 0) continue;
      if (fleetAdmit(s) != PASS) continue;
      if (s.fleetStage == ST_RESPONSE) {
        s.confirm();
        startInspection(s);
        continueResponse();
      } else continueRequest();
    }
  }
  setEffectiveContext(root.id);
}

/** Root tick: keepalive, a lease for a process that has none yet, chains' watchdogs, pending waits, returns. */
export function fleetTick(root: Root): void {
  const vm = vmOf(root);
  keepalive(root, vm);
  if (vm.phase != L_GRANT && liveLease(root) == 0) {
    const l = needLease(root, vm);
    if (l != LEASE_WAIT) leaseSettled(root, l);
  }
  limitsTick(root, vm);
  rateTick(root);
  fleetResume(root);
}

export function onHttpCallResponse(rootId: u32, token: u32, headers: u32, bodySize: u32): void {
  if (!roots.has(rootId)) return;
  const root = roots.get(rootId);
  if (root.config.fleet === null || token == 0) return;
  const vm = vmOf(root);
  const status = callStatus();
  const rep = parseReply(callBody(bodySize, 1 << 20));
  if (token == vm.kaToken) keepaliveAnswer(root, vm, status, rep);
  else if (token == vm.token && vm.phase == L_GRANT) {
    const l = leaseAnswer(root, vm, status, rep);
    if (l != LEASE_WAIT) leaseSettled(root, l);
  } else if (!rateAnswer(root, token, status, rep)) limitAnswer(root, token, status, rep);
  fleetResume(root);
}
