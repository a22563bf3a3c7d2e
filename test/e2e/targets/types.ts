// What every e2e target provides. Scenarios (../scenarios.ts) only talk to these interfaces.
import type { PodState } from "../../support/pods.ts";

export interface DeployOptions {
  /** the complete plugin configuration JSON (envoy.yaml's, with the scenario's patch applied) */
  pluginConfig: Record<string, unknown>;
  /** worker threads / VMs (default 2) */
  concurrency?: number;
  /** "lean": build/ws-governor-lean.wasm with the Wasm filter taken out of its ExtensionWithMatcher, the way an Istio
   *  WasmPlugin installs it (k8s/lean); default: build/ws-governor.wasm as envoy/envoy.yaml wraps it */
  module?: "local" | "lean";
}

export interface Deployment {
  readonly target: string;
  /** pod name as the filter sees it (envoy.yaml node.metadata.NAME) */
  readonly podName: string;
  wsUrl(path: string): string;
  httpUrl(path: string): string;
  adminUrl(path: string): string;
  /** state of each running echo pod (open sockets …); pods that were killed are left out */
  podStates(): Promise<PodState[]>;
  /** kill every echo pod abruptly */
  killPods(): Promise<void>;
  /** Envoy/proxy logs collected so far (printed when a scenario fails) */
  logs(): Promise<string>;
  stop(): Promise<void>;
}

/** deploy() failed the way a bad configuration fails: Envoy/proxy refused to start. */
export class DeployError extends Error {
  constructor(message: string, readonly logs: string) {
    super(message);
  }
}

export interface Target {
  readonly name: string;
  /** undefined when usable, otherwise why not (printed; the target's tests are skipped) */
  unavailable(): Promise<string | undefined>;
  deploy(o: DeployOptions): Promise<Deployment>;
}
