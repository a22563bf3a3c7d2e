// The allocator Envoy calls for every value it hands to the VM (header values, shared data, buffers, properties).
// Raw heap blocks: no object header, no zero fill, no reference counts (the SDK's malloc made each one a zeroed,
// retained ArrayBuffer). host/abi.ts reads a returned value in place and frees it exactly once (freeBytes).
// A size the heap cannot serve aborts the VM, as the SDK's malloc did.

export function malloc(size: usize): usize {
  return __alloc(size);
}

export function free(ptr: usize): void {
  __free(ptr);
}
