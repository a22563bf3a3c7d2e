// Reads the value a rate-limit or client key is built from (config `key` objects). Identity comes from Envoy, never
// from parsing x-forwarded-for here: source.address follows Envoy's trusted-XFF settings (so a client chooses it when
// use_remote_address is false, envoy-host.md §13.2); the TLS peer identity and dynamic metadata set by filters such
// as jwt_authn cannot be forged by the client.
import { KeySpec, KeySource } from "../core/config";
import { hostOf } from "../core/cidr";
import { getHeader, outString, getProperty, OK, MAP_REQUEST_HEADERS } from "../host/abi";
import { utf8Encode } from "../core/utf8";

const SOURCE_ADDRESS = utf8Encode("source\0address");
const DESTINATION_ADDRESS = utf8Encode("destination\0address");
// The identity Envoy verified in the client certificate (the SPIFFE id under Istio mTLS); absent on plaintext.
const PEER_URI_SAN = utf8Encode("connection\0uri_san_peer_certificate");

export function sourceAddress(): string {
  if (getProperty(SOURCE_ADDRESS) != OK) return "";
  return outString();
}

/** The local address the client connected to: taken from the socket, never from a header (envoy-host.md §13.2). */
export function destinationAddress(): string {
  if (getProperty(DESTINATION_ADDRESS) != OK) return "";
  return outString();
}

/** The key's value for this request; "" when absent (all such requests share one bucket). */
export function keyValue(spec: KeySpec, spec_path: ArrayBuffer | null): string {
  if (spec.source == KeySource.Global) return "";
  if (spec.source == KeySource.Address) return hostOf(sourceAddress());
  if (spec.source == KeySource.Peer) {
    if (getProperty(PEER_URI_SAN) != OK) return "";
    return outString();
  }
  if (spec.source == KeySource.Header) {
    if (getHeader(MAP_REQUEST_HEADERS, utf8Encode(spec.header)) != OK) return "";
    return outString();
  }
  if (spec_path === null) return "";
  if (getProperty(spec_path) != OK) return "";
  return outString();
}

/** Property path of a metadata key: metadata.filter_metadata.<namespace>.<path…> (envoy-host.md §6.3). */
export function metadataPath(spec: KeySpec): ArrayBuffer | null {
  if (spec.source != KeySource.Metadata) return null;
  let path = "metadata\0filter_metadata\0" + spec.namespace;
  for (let i = 0; i < spec.path.length; i++) path += "\0" + unchecked(spec.path[i]);
  return utf8Encode(path);
}
