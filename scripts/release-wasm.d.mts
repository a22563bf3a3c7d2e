// Types for scripts/release-wasm.mjs (used by test/filter/release.test.ts).
export interface PackInfo {
  segments: number;
  image: number;
  blob: number;
  lo: number;
  hi: number;
  blobAt: number;
  scratchEnd: number;
}
export function dataSegments(bin: Uint8Array): { offset: number; bytes: Uint8Array }[];
export function deinterleave(img: Uint8Array): Uint8Array;
export function compress(src: Uint8Array): Uint8Array;
export function decompress(blob: Uint8Array, length: number): Uint8Array;
export function packModule(bin: Uint8Array): { binary: Uint8Array; info: PackInfo | null };
export function optimize(bin: Uint8Array): Uint8Array;
