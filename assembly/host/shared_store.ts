// SharedStore (core/store.ts) over proxy_get/set_shared_data. Keys are UTF-8 encoded per call.
import { SharedStore } from "../core/store";
import { getShared, setShared, freeBytes, outPtr, outLen, sharedCas, OK } from "./abi";
import { utf8Encode } from "../core/utf8";

export class HostStore extends SharedStore {
  // A CAS loop reads and writes the same key: keep its UTF-8 form from the get for the set.
  private lastKey: string = "";
  private lastBytes: ArrayBuffer = new ArrayBuffer(0);

  private encoded(key: string): ArrayBuffer {
    if (changetype<usize>(key) != changetype<usize>(this.lastKey) && key != this.lastKey) { // the same string: no compare
      this.lastKey = key;
      this.lastBytes = utf8Encode(key);
    }
    return this.lastBytes;
  }

  get(key: string): u32 {
    freeBytes();
    const st = getShared(this.encoded(key));
    if (st == OK) {
      this.valuePtr = outPtr;
      this.valueLen = outLen;
      this.cas = sharedCas;
    } else {
      this.valuePtr = 0;
      this.valueLen = 0;
      this.cas = 0;
    }
    return st;
  }

  set(key: string, value: ArrayBuffer, cas: u32): u32 {
    return setShared(this.encoded(key), changetype<usize>(value), value.byteLength, cas);
  }

  setValue(key: string, cas: u32): u32 {
    return setShared(this.encoded(key), this.valuePtr, this.valueLen, cas);
  }

  done(): void {
    freeBytes();
    this.valuePtr = 0;
    this.valueLen = 0;
  }
}
