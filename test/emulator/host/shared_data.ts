// Process-global shared data and shared queues (§4). cpp-host SharedData: map<vm_id, map<key, (bytes, cas)>>,
// ONE cas counter for the whole process starting at 1 and skipping 0 on u32 wrap; no delete hostcall.
import type { SharedDataView } from "./api.ts";

interface Entry { value: Uint8Array; cas: number }

export class SharedDataStore implements SharedDataView {
  private data = new Map<string, Map<string, Entry>>();
  private cas = 1;
  beforeSet?: (vmId: string, key: string, vm: string) => void;
  afterGet?: (vmId: string, key: string, vm: string) => void;

  nextCas(): number {
    const c = this.cas;
    this.cas = (this.cas + 1) >>> 0;
    if (this.cas === 0) this.cas = 1;
    return c;
  }
  /** test helper: move the global counter (e.g. close to the u32 wrap) */
  setNextCas(v: number): void {
    this.cas = v >>> 0 || 1;
  }

  get(vmId: string, key: string): { value: Uint8Array; cas: number } | undefined {
    const e = this.data.get(vmId)?.get(key);
    return e ? { value: e.value, cas: e.cas } : undefined;
  }
  keys(vmId: string): string[] {
    return [...(this.data.get(vmId)?.keys() ?? [])];
  }
  /** §4.3: key exists → cas 0 or equal → replace with fresh cas; else CasMismatch. Missing key → insert, cas ignored. */
  set(vmId: string, key: string, value: Uint8Array, cas: number, vmName: string): "ok" | "mismatch" {
    this.beforeSet?.(vmId, key, vmName);
    let ns = this.data.get(vmId);
    if (!ns) {
      ns = new Map();
      this.data.set(vmId, ns);
    }
    const e = ns.get(key);
    if (e) {
      if (cas !== 0 && cas !== e.cas) return "mismatch";
      e.value = value;
      e.cas = this.nextCas();
    } else {
      ns.set(key, { value, cas: this.nextCas() });
    }
    return "ok";
  }
  /** raw write for tests (as another VM's write would do): fresh cas, no hooks */
  put(vmId: string, key: string, value: Uint8Array): number {
    let ns = this.data.get(vmId);
    if (!ns) {
      ns = new Map();
      this.data.set(vmId, ns);
    }
    const cas = this.nextCas();
    ns.set(key, { value, cas });
    return cas;
  }
  deleteVmId(vmId: string): void {
    this.data.delete(vmId);
    for (const [k, q] of this.queues) if (q.vmId === vmId) {
      this.queues.delete(k);
      this.queueByToken.delete(q.token);
    }
  }

  // ---- shared queues (§4.6) ----
  private queues = new Map<string, Queue>();
  private queueByToken = new Map<number, Queue>();
  private nextToken = 1;
  register(vmId: string, name: string, owner: QueueOwner): number {
    const k = vmId + "\u0000" + name;
    let q = this.queues.get(k);
    if (!q) {
      q = { vmId, name, token: this.nextToken++, items: [], owner };
      this.queues.set(k, q);
      this.queueByToken.set(q.token, q);
    }
    q.owner = owner;
    return q.token;
  }
  resolve(vmId: string, name: string): number | undefined {
    return this.queues.get(vmId + "\u0000" + name)?.token;
  }
  queue(token: number): Queue | undefined {
    return this.queueByToken.get(token);
  }
}

export interface QueueOwner { notify(token: number): void }
export interface Queue { vmId: string; name: string; token: number; items: Uint8Array[]; owner: QueueOwner }
