// A probe whose every stream callback logs its name, so tests can assert Envoy's callback order.
import { Probe } from "./build.ts";

export function traceProbe(ov: Record<string, string> | ((p: Probe) => Record<string, string>) = {}, raw?: string): Probe {
  const p = new Probe({ raw });
  const overrides = typeof ov === "function" ? ov(p) : ov;
  const cb = (name: string, tag: string, result: string | null) => {
    const body = overrides[name] ?? "";
    p.on(name, `${p.log(tag)} ${body} ${result ?? ""}`);
  };
  cb("proxy_on_context_create", "create", null);
  cb("proxy_on_request_headers", "req_headers", overrides.proxy_on_request_headers ? null : "(i32.const 0)");
  cb("proxy_on_request_body", "req_body", overrides.proxy_on_request_body ? null : "(i32.const 0)");
  cb("proxy_on_response_headers", "resp_headers", overrides.proxy_on_response_headers ? null : "(i32.const 0)");
  cb("proxy_on_response_body", "resp_body", overrides.proxy_on_response_body ? null : "(i32.const 0)");
  cb("proxy_on_log", "log", null);
  cb("proxy_on_done", "done", overrides.proxy_on_done ? null : "(i32.const 1)");
  cb("proxy_on_delete", "delete", null);
  if (overrides.proxy_on_tick) p.on("proxy_on_tick", overrides.proxy_on_tick);
  if (overrides.proxy_on_configure) p.on("proxy_on_configure", overrides.proxy_on_configure);
  return p;
}
