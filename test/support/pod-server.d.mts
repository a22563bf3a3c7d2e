export interface PodState {
  name: string;
  open: number;      // WebSockets currently open on this pod
  accepted: number;  // WebSockets accepted since start
  closed: number;
  messages: number;  // messages echoed
}
export interface PodServer {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  state(): PodState;
  kill(): Promise<void>;
  close(): Promise<void>;
}
export function startPodServer(opts?: { name?: string; port?: number; host?: string }): Promise<PodServer>;
