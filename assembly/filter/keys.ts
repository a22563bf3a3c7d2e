// Reads the value a rate-limit or client key is built from (config `key` objects). Identity comes from Envoy
// (source.address honours Envoy's trusted-XFF settings; dynamic metadata is set by filters such as jwt_authn),
// never from parsing x-forwarded-for here.
import { KeySpec, KeySource } from "../core/config";
import { hostOf } from "../core/cidr";
import { getHeader, outString, getProperty, OK, MAP_REQUEST_HEADERS } from "../host/abi";
import { utf8Encode } from "../core/utf8";

const SOURCE_ADDRESS = utf8Encode("source\0address");

export function sourceAddress(): string {
  if (getProperty(SOURCE_ADDRESS) != OK) return "";
  return outString();
}

/** The key's value for this request; "" when absent (all such requests share one bucket). */
export function keyValue(spec: KeySpec, spec_path: ArrayBuffer | null): string {
  if (spec.source == KeySource.Global) return "";
  if (spec.source == KeySource.Address) return hostOf(sourceAddress());
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
