// Body callbacks after the 101. With frame inspection off they only Continue.
import { Stream, CONTINUE } from "./stream";

export function onRequestBody(s: Stream, size: u32, eos: bool): u32 {
  return CONTINUE;
}

export function onResponseBody(s: Stream, size: u32, eos: bool): u32 {
  return CONTINUE;
}
