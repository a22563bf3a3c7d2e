// Envoy HeaderMapImpl operations on a HeaderList (names lower-case, pseudo-headers first, §2.8).
import type { HeaderList } from "./api.ts";

export function hmGet(list: HeaderList, key: string): string | undefined {
  for (let i = 0; i < list.length; i++) if (list[i][0] === key) return list[i][1];
  return undefined;
}
/** addCopy: appends; a pseudo-header goes to the end of the pseudo section */
export function hmAdd(list: HeaderList, key: string, value: string): void {
  if (key.charCodeAt(0) === 58 /* : */) {
    let i = 0;
    while (i < list.length && list[i][0].charCodeAt(0) === 58) i++;
    list.splice(i, 0, [key, value]);
  } else list.push([key, value]);
}
export function hmRemove(list: HeaderList, key: string): void {
  let w = 0;
  for (let r = 0; r < list.length; r++) if (list[r][0] !== key) list[w++] = list[r];
  list.length = w;
}
/** setCopy: removes every entry of the key, then appends one */
export function hmReplace(list: HeaderList, key: string, value: string): void {
  hmRemove(list, key);
  hmAdd(list, key, value);
}
/** HeaderMap::byteSize() = Σ(len(key) + len(value)) */
export function hmByteSize(list: HeaderList): number {
  let n = 0;
  for (let i = 0; i < list.length; i++) n += list[i][0].length + list[i][1].length;
  return n;
}
/** joined value as CEL's HeadersWrapper returns it */
export function hmJoined(list: HeaderList, key: string): string | undefined {
  let out: string | undefined;
  for (const [k, v] of list) if (k === key) out = out === undefined ? v : out + "," + v;
  return out;
}
