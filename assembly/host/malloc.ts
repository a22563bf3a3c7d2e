// The allocator Envoy calls for every value it hands to the VM (header values, shared data, buffers, properties).
// host/abi.ts reads each value in place and frees it exactly once (freeBytes), and mostly before the next host call:
// values up to 256 B therefore go to one static scratch block while it is free, without touching the heap. Anything
// else is a raw heap block: no object header, no zero fill, no reference counts (the SDK's malloc made each value a
// zeroed, retained ArrayBuffer). A size the heap cannot serve aborts the VM, as the SDK's malloc did.

const SCRATCH_SIZE: usize = 256;
const scratchBuf = new ArrayBuffer(i32(SCRATCH_SIZE));
const SCRATCH: usize = changetype<usize>(scratchBuf);
let scratchBusy = false;

export function malloc(size: usize): usize {
  if (size <= SCRATCH_SIZE && !scratchBusy) {
    scratchBusy = true;
    return SCRATCH;
  }
  return __alloc(size);
}

export function free(ptr: usize): void {
  if (ptr == SCRATCH) scratchBusy = false;
  else __free(ptr);
}
