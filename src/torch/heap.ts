// Giving freed memory back to the system during long synchronous work.
//
// A disposed tensor's buffer goes back to malloc at once, but its JS handle (a small native box)
// is freed only when V8 collects it and the event loop runs its finalizer, which never happens
// inside one long synchronous loop (an exact evaluation, a 256×256 sample). Thousands of those
// small boxes then sit between the freed buffers in malloc's heap, which cannot reuse or return
// that space, and the resident set grows with every image: evaluating 8 images at 256×256
// measured +512 MB an image on Debian's 1.13, 5.4 GB in all (test/spn/memory.test.ts has the
// numbers). malloc_trim gives the free pages back; it costs milliseconds, so it runs at most once
// a second.
import { native } from './binding.js';

let last = 0;

/** Gives malloc's free pages back to the system, at most once every `everyMs` ms; true when it ran. */
export function trimHeap(everyMs = 1000): boolean {
  const now = performance.now();
  if (now - last < everyMs) return false;
  native.mallocTrim();
  last = performance.now();
  return true;
}
