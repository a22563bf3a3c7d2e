// Cluster load balancing and name resolution of the loopback proxy.
//   ROUND_ROBIN: endpoints in order (all weights equal).
//   LEAST_REQUEST: Envoy's default N_CHOICES selection with equal weights (least_request_lb.cc
//     unweightedHostPickNChoices): choice_count (default 2) hosts sampled with random() % n; a later sample replaces
//     the candidate only with strictly fewer active requests (host rq_active: an upgraded WebSocket stays an active
//     request until it closes), so a tie keeps the first sample. `random` is injectable for deterministic tests.
//   dns_lookup_family for hostname endpoints (STRICT_DNS / LOGICAL_DNS): AUTO = IPv6 first, else IPv4;
//     V4_PREFERRED = IPv4 first, else IPv6; V4_ONLY / V6_ONLY; ALL = every address, first one used.
import dns from "node:dns";
import net from "node:net";
import type { ClusterConfig, DnsLookupFamily, SocketAddress } from "./bootstrap_types.ts";

export const endpointKey = (e: SocketAddress): string => `${e.address}:${e.port}`;

export class LoadBalancers {
  private rr = new Map<string, number>();
  private active = new Map<string, number>();

  /** random(): a uniformly distributed unsigned integer, like Envoy's Random::RandomGenerator::random() */
  constructor(private readonly random: () => number = () => Math.floor(Math.random() * 2 ** 32)) {}

  activeRequests(key: string): number {
    return this.active.get(key) ?? 0;
  }

  /** host stats rq_active: +1 when the router starts the upstream request, -1 when the stream ends */
  requestActive(key: string, delta: number): void {
    this.active.set(key, Math.max(0, this.activeRequests(key) + delta));
  }

  pick(c: ClusterConfig): SocketAddress | undefined {
    const hosts = c.endpoints;
    if (hosts.length === 0) return undefined;
    if (c.lbPolicy === "ROUND_ROBIN") {
      const i = this.rr.get(c.name) ?? 0;
      this.rr.set(c.name, i + 1);
      return hosts[i % hosts.length];
    }
    if (hosts.length === 1) return hosts[0];
    let candidate: SocketAddress | undefined;
    for (let i = 0; i < c.choiceCount; i++) {
      const sampled = hosts[this.random() % hosts.length];
      if (!candidate || this.activeRequests(endpointKey(sampled)) < this.activeRequests(endpointKey(candidate))) candidate = sampled;
    }
    return candidate;
  }
}

type LookupCb = (err: NodeJS.ErrnoException | null, address: string | dns.LookupAddress[], family?: number) => void;

/** Order/filter resolved addresses per dns_lookup_family (exported for tests). */
export function applyFamily(addrs: dns.LookupAddress[], fam: DnsLookupFamily): dns.LookupAddress[] {
  const v4 = addrs.filter((a) => a.family === 4), v6 = addrs.filter((a) => a.family === 6);
  switch (fam) {
    case "V4_ONLY": return v4;
    case "V6_ONLY": return v6;
    case "V4_PREFERRED": return v4.length > 0 ? v4 : v6;
    case "AUTO": return v6.length > 0 ? v6 : v4;
    case "ALL": return addrs;
  }
}

/** A `lookup` for http.request that resolves a hostname endpoint the way the cluster's dns_lookup_family says. */
export function lookupFor(fam: DnsLookupFamily, resolver: typeof dns.lookup = dns.lookup) {
  return (hostname: string, options: dns.LookupOptions, cb: LookupCb): void => {
    if (net.isIP(hostname)) {
      const f = net.isIP(hostname);
      if (options.all) cb(null, [{ address: hostname, family: f }]);
      else cb(null, hostname, f);
      return;
    }
    resolver(hostname, { all: true }, (err, addrs) => {
      if (err) return cb(err, "");
      const chosen = applyFamily(addrs, fam);
      if (chosen.length === 0) {
        return cb(Object.assign(new Error(`${hostname}: no address for dns_lookup_family ${fam}`), { code: "ENOTFOUND" }), "");
      }
      if (options.all) cb(null, chosen);
      else cb(null, chosen[0].address, chosen[0].family);
    });
  };
}
