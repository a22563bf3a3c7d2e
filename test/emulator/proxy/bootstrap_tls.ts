// Reader for the listener's downstream TLS transport socket (envoy.transport_sockets.tls with a DownstreamTlsContext):
// one certificate, an optional trusted CA (validation_context), require_client_certificate. File paths only.
import { FieldReader } from "./bootstrap_fields.ts";
import type { TlsListenerConfig } from "./bootstrap_types.ts";

const T_DTLS = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext";

export class TlsReader extends FieldReader {
  private dataSource(path: string, v: unknown): string | undefined {
    const o = this.obj(path, v, ["filename"]);
    return o ? this.str(`${path}.filename`, o.filename, true) : undefined;
  }

  protected transportSocket(path: string, v: unknown): TlsListenerConfig | undefined {
    const ts = this.obj(path, v, ["name", "typed_config"]);
    if (!ts) return undefined;
    if (ts.name !== undefined && ts.name !== "envoy.transport_sockets.tls") this.err(`${path}.name`, "only envoy.transport_sockets.tls");
    const tc = this.any(`${path}.typed_config`, ts.typed_config, T_DTLS, ["common_tls_context", "require_client_certificate"]);
    if (!tc) return undefined;
    const cp = `${path}.typed_config.common_tls_context`;
    const c = this.obj(cp, tc.common_tls_context, ["tls_certificates", "validation_context"]);
    if (!c) return undefined;
    const certs = this.list(`${cp}.tls_certificates`, c.tls_certificates);
    if (certs.length !== 1) this.err(`${cp}.tls_certificates`, "exactly one certificate is supported");
    const cert = this.obj(`${cp}.tls_certificates[0]`, certs[0], ["certificate_chain", "private_key"]);
    const certChain = cert && this.dataSource(`${cp}.tls_certificates[0].certificate_chain`, cert.certificate_chain);
    const privateKey = cert && this.dataSource(`${cp}.tls_certificates[0].private_key`, cert.private_key);
    let trustedCa: string | undefined;
    if (c.validation_context !== undefined) {
      const vc = this.obj(`${cp}.validation_context`, c.validation_context, ["trusted_ca"]);
      if (vc) trustedCa = this.dataSource(`${cp}.validation_context.trusted_ca`, vc.trusted_ca);
    }
    let requireClientCertificate = false;
    if (tc.require_client_certificate !== undefined) {
      if (typeof tc.require_client_certificate !== "boolean") this.err(`${path}.typed_config.require_client_certificate`, "expected a bool");
      else requireClientCertificate = tc.require_client_certificate;
    }
    // Envoy: "require_client_certificate is true but no validation context" is a configuration error
    if (requireClientCertificate && trustedCa === undefined) {
      this.err(`${path}.typed_config.require_client_certificate`, "needs common_tls_context.validation_context.trusted_ca");
    }
    if (!certChain || !privateKey) return undefined;
    return { certChain, privateKey, trustedCa, requireClientCertificate };
  }
}
