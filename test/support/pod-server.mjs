// A WebSocket echo "pod": one HTTP server that
//   - upgrades any path to a WebSocket that echoes every message back (101 carries `x-pod: <name>`),
//   - answers plain HTTP with a JSON description of the request it received (pod, method, path, headers, body),
//   - reports its own state at GET /__pod/state: {"name","open","accepted","closed","messages"}.
// Plain JavaScript on purpose: the Docker target runs it in a stock node image with only `ws` from node_modules:
//   node test/support/pod-server.mjs --name pod-a --port 18081 [--host 127.0.0.1]
// Types for TypeScript users are in pod-server.d.mts; test/support/pods.ts wraps it.
import http from "node:http";
import { WebSocketServer } from "ws";

/**
 * @param {{name?: string, port?: number, host?: string}} opts
 * @returns {Promise<import("./pod-server.d.mts").PodServer>}
 */
export async function startPodServer(opts = {}) {
  const name = opts.name ?? "pod";
  const host = opts.host ?? "127.0.0.1";
  const state = { name, open: 0, accepted: 0, closed: 0, messages: 0 };
  const sockets = new Set();
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      if (req.url === "/__pod/state") {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify(state));
        return;
      }
      const body = JSON.stringify({
        pod: name,
        method: req.method,
        path: req.url,
        headers: req.headers,
        body: Buffer.concat(chunks).toString("utf8"),
      });
      res.writeHead(200, { "content-type": "application/json", "x-pod": name });
      res.end(body);
    });
  });
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  wss.on("headers", (headers) => headers.push(`x-pod: ${name}`));
  server.on("upgrade", (req, socket, head) => {
    wss.handleUpgrade(req, socket, head, (ws) => {
      state.open++;
      state.accepted++;
      ws.on("message", (data, isBinary) => {
        state.messages++;
        ws.send(data, { binary: isBinary });
      });
      ws.on("error", () => {});
      ws.on("close", () => {
        state.open--;
        state.closed++;
      });
    });
  });
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, host, () => resolve(undefined));
  });
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : 0;
  let killed = false;
  return {
    name,
    host,
    port,
    state: () => ({ ...state }),
    /** abrupt death: every socket destroyed (clients see a reset/close), server stops listening */
    kill: async () => {
      if (killed) return;
      killed = true;
      for (const ws of wss.clients) ws.terminate();
      for (const s of sockets) s.destroy();
      wss.close();
      await new Promise((resolve) => server.close(() => resolve(undefined)));
    },
    /** graceful: close frames 1001, then stop */
    close: async () => {
      if (killed) return;
      killed = true;
      for (const ws of wss.clients) ws.close(1001, "pod shutting down");
      const deadline = Date.now() + 2000;
      while (state.open > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      for (const s of sockets) s.destroy();
      wss.close();
      await new Promise((resolve) => server.close(() => resolve(undefined)));
    },
  };
}

function argValue(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const isMain = process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href;
if (isMain) {
  const pod = await startPodServer({
    name: argValue("name", process.env.POD_NAME ?? "pod"),
    port: Number(argValue("port", process.env.POD_PORT ?? "18081")),
    host: argValue("host", process.env.POD_HOST ?? "127.0.0.1"),
  });
  console.log(`pod ${pod.name} listening on ${pod.host}:${pod.port}`);
  const stop = () => pod.kill().then(() => process.exit(0));
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}
