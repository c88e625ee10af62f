// Giving freed memory back to the system during long synchronous work.
//
// A disposed tensor's buffer goes back to malloc at once, but its JS handle (a small native box,
// and Node's reference to it) is freed only when V8 collects it and the event loop runs its
// finalizer, which never happens inside one long synchronous loop (an exact evaluation, a
// 256×256 sample). Thousands of those small boxes then sit between the freed buffers in malloc's
// heap, which cannot reuse or return that space, and the resident set grows with every slice:
// evaluating 8 images at 256×256 measured +512 MB an image on Debian's 1.13, 5.4 GB in all
// (test/spn/memory.test.ts has the numbers). malloc_trim gives the free pages back.
//
// When: called once a slice while the slice's tensors are still alive (so a trim returns what
// earlier slices left unusable, not the buffers the next slice will reuse), it trims once the
// resident set has grown `growthMB` over the lowest it was since the last trim. That bounds what
// malloc's cache adds to a peak whatever a slice costs; a clock does not. Measured with the
// addon's own allocator settings (Debian's 1.13, one thread), a width-16 model's 256×256
// evaluation of 1 and of 8 images (test/spn/memory.test.ts's child, about 13 slices a second):
// - at most one trim a second, after the slice: peaks from 596 to 1,218 MB for the same work;
// - a trim after every slice: 490 to 499 MB, but twice the time (each trim about 6 ms, and the
//   pages it returns fault back in);
// - this rule: 518 to 551 MB in three runs, in the time of the clock (14 to 19 s for the child
//   against 18 to 23); a peak can still hold up to `growthMB` more than another (482 against
//   548 MB in one run). The rule at the end of a slice instead made fmnist-cpu's
//   evaluation of 256 images 1.6× slower (every slice's buffers returned and faulted back); here
//   it takes what the clock took (5.2 to 5.5 s against 5.2 to 5.6).
import { native } from './binding.js';

const MB = 2 ** 20;
/** The resident set just after the last trim, or the lowest seen since (bytes); 0 before any. */
let floor = 0;

/**
 * Gives malloc's free pages back to the system when the resident set has grown `growthMB` over
 * the lowest it was since the last trim; true when it ran. Cheap to call often (one read of the
 * process's RSS).
 */
export function trimHeap(growthMB = 64): boolean {
  const rss = process.memoryUsage.rss();
  if (floor > 0 && rss - floor < growthMB * MB) {
    floor = Math.min(floor, rss);
    return false;
  }
  native.mallocTrim();
  floor = process.memoryUsage.rss();
  return true;
}
