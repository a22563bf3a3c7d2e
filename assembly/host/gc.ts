// AssemblyScript 0.17 never runs its cycle collector by itself (toolchain.md §5). __collect must be reached through
// a plain function kept alive by a module-level reference, or validation fails when it is compiled lazily.
export function collect(): void {
  __collect();
}
export const collectRef: () => void = collect;
