// Free TCP ports on 127.0.0.1 (for configurations that need a port number before the server starts, e.g. a rendered
// Envoy bootstrap). Servers we own listen on port 0 instead.
import net from "node:net";

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => (port ? resolve(port) : reject(new Error("no port"))));
    });
  });
}

/** n distinct free ports. */
export async function freePorts(n: number): Promise<number[]> {
  const out = new Set<number>();
  for (let i = 0; i < n * 10 && out.size < n; i++) out.add(await freePort());
  if (out.size < n) throw new Error(`could not find ${n} free ports`);
  return [...out];
}
