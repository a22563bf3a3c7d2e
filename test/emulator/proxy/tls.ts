// What Envoy's Ssl::ConnectionInfo reports for a downstream TLS connection (tls_version, subjects in RFC 2253 form,
// URI/DNS SANs, the peer certificate's SHA-256 digest), read from a node TLS socket. Used for the connection.*
// properties (envoy-host.md §13.2; Filters::Common::Expr::ConnectionWrapper / extractSslInfo).
import type { X509Certificate } from "node:crypto";
import type tls from "node:tls";
import type { DownstreamTls } from "../host/api.ts";

/** X509_NAME_print_ex(XN_FLAG_RFC2253): most specific RDN first, comma-separated */
function rfc2253(subject: string | undefined): string {
  if (!subject) return "";
  return subject.split("\n").filter((l) => l !== "").reverse().join(",");
}

function sans(cert: X509Certificate | undefined, kind: "URI" | "DNS"): string[] {
  const alt = cert?.subjectAltName;
  if (!alt) return [];
  const out: string[] = [];
  for (const part of alt.split(/,\s*/)) if (part.startsWith(kind + ":")) out.push(part.slice(kind.length + 1));
  return out;
}

export function tlsConnectionInfo(s: tls.TLSSocket): DownstreamTls {
  const peer = s.getPeerX509Certificate?.();
  const local = s.getX509Certificate?.();
  return {
    version: s.getProtocol() ?? "",
    peerCertificatePresented: peer !== undefined,
    subjectPeer: rfc2253(peer?.subject),
    uriSanPeer: sans(peer, "URI"),
    dnsSanPeer: sans(peer, "DNS"),
    subjectLocal: rfc2253(local?.subject),
    uriSanLocal: sans(local, "URI"),
    dnsSanLocal: sans(local, "DNS"),
    sha256PeerDigest: peer ? peer.fingerprint256.replace(/:/g, "").toLowerCase() : "",
    sni: typeof (s as { servername?: unknown }).servername === "string" ? (s as unknown as { servername: string }).servername : "",
  };
}
