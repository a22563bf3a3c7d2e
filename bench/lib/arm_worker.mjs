// Worker entry for IsolatedArm (isolated.ts): the tsx loader is registered in this thread, then the TypeScript side.
import { register } from "tsx/esm/api";
register();
await import("./arm_worker.ts");
