// Finding a program the tests start (Chromium, etcd): an environment override, fixed paths, then PATH.
import { accessSync, constants } from "node:fs";
import path from "node:path";

export function isExecutable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** `$envVar` if set (and only it: undefined when it is not executable), else the first of `paths`, else the first
 *  of `names` on PATH. */
export function findExecutable(envVar: string, paths: string[], names: string[]): string | undefined {
  const env = process.env[envVar];
  if (env) return isExecutable(env) ? env : undefined;
  for (const p of paths) if (isExecutable(p)) return p;
  for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
    if (!dir) continue;
    for (const n of names) {
      const p = path.join(dir, n);
      if (isExecutable(p)) return p;
    }
  }
  return undefined;
}
