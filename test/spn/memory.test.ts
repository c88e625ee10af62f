// Memory at 256×256 does not grow with the number of images: exact evaluation of 8 images takes
// no more memory than of 1 (within 10%).
//
// The measure, in a child process of its own (memory-child.ts, run by vite-node, so that the
// evaluations' minutes of synchronous work do not block this worker): its resident-set
// high-water mark (VmHWM in /proc/self/status), reset before each measurement by writing 5 to
// /proc/self/clear_refs (Linux ≥ 4.0), so each number is the peak of that evaluation alone (on
// top of what the process already holds). RSS counts what libtorch's CPU allocator really
// touched; the addon's live-tensor count would not see a tensor grow with the batch. A warm-up
// evaluation first allocates what any evaluation keeps (thread pools, the allocator's arenas).
//
// The model is small (width 16, one block each) but its slices are the recipe's (S=8: 64 slices
// of 32×32 at 256×256). Measured with glibc's settings below in effect (issue #21: an addon that
// keeps them), one image's evaluation adds 25 to 60 MB to the peak on either build: 1 image 463
// MB and 8 images 472 on Debian's 1.13, 629 and 634 on PyTorch 2.11 (the CUDA wheel's libraries
// alone hold ~450 MB). The numbers measured before (3,490 MB for 1 image and 5,245 for 8 in one
// forward pass, then 1,988 and 1,988 in chunks; 854 and 1,570 on 2.11) were taken without those
// settings or with them overridden (see ALLOCATOR), so they counted malloc's cache.
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { PRESETS, parseModelConfig } from '../../src/spn/config.js';
import { evalChunk } from '../../src/store/evaluate.js';

const hasClearRefs = (() => {
  try {
    fs.writeFileSync('/proc/self/clear_refs', '5');
    return /VmHWM/.test(fs.readFileSync('/proc/self/status', 'utf8'));
  } catch {
    return false;
  }
})();

/**
 * glibc returns freed memory to the system at once (every block over 16 kB its own mapping, one
 * arena, no trim threshold) and oneDNN keeps no primitive cache, so that the child's RSS follows
 * what is allocated, not what the allocators cache.
 *
 * The cause of issue #21 (8 images measured at 1,570 MB against 854 for 1 on 2.11): the addon
 * overrides the first and the last of these. At load it calls mallopt() (keep blocks up to 32 MB
 * in the heap, trim only past 256 MB free; native/spn_torch.cc, for training's speed), which wins
 * over the environment, read when malloc starts. Then a synchronous evaluation's heap grows with
 * every image, on both builds, while what malloc has in use does not: the handles of disposed
 * tensors (their memory freed at once, the handle's box only when V8 collects it and the event
 * loop runs its finalizers, so never during evaluate(): ~6,700 per image) pin the freed buffers
 * between them; letting V8 collect and the finalizers run after each image stops the growth
 * (1.13: 1,266 MB after every image from the second on). Measured per image of one evaluate()
 * (mallinfo2 and VmRSS): on 1.13 RSS 882, 1,395, 1,907, ... 5,459 MB after the 8th image (+512 MB
 * each) with malloc's in-use bytes 113 to 128 MB and its free bytes 460 to 5,053 MB; on 2.11 812
 * to 1,493 MB with 150 to 164 MB in use. The peaks of a run vary with when V8 collects: the child
 * measured 895 to 2,184 MB for 8 images in four runs on 2.11, and 3,203 against 2,403 for 1 on
 * 1.13 (the bound held there by chance). The addon built to keep the environment's settings
 * measured 451 to 470 MB for 1 image and 453 to 476 for 8 (1.13), 685 to 764 and 684 to 1,018
 * (2.11): there a slice's activations (32×32×16 floats, 64 kB) are below a 128 kB threshold and
 * fragment the heap the same way (up to 353 MB free in it); with 16 kB, 628 to 644 and 633 to 658
 * in four runs (2.11). The addon now keeps the settings the environment gives
 * (MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_), and evaluate() gives malloc's free pages back
 * as they pile up (torch/heap.ts), which also holds the addon's own settings flat (the second
 * case below): there, without the environment below, 781 MB for 1 image and 1,316 for 8 before
 * any trim; 596 to 1,218 MB either way with at most one trim a second; 518 to 551 with a
 * trim whenever the resident set has grown 64 MB (1.13, three runs, 8 within 3% of 1; 2.11: 702
 * to 705 and 716 to 724, two runs), but 482 against 548 in a suite run: a peak can hold up to the
 * 64 MB that trimHeap lets pile up. The first case's
 * child still checks that freed memory goes back (freedMemoryReturns) and the assertion is
 * skipped, saying so, where it does not.
 */
const ALLOCATOR = { MALLOC_MMAP_THRESHOLD_: '16384', MALLOC_ARENA_MAX: '1', MALLOC_TRIM_THRESHOLD_: '0', ONEDNN_PRIMITIVE_CACHE_CAPACITY: '0', DNNL_PRIMITIVE_CACHE_CAPACITY: '0' };

interface ChildResult { probe: { returns: boolean; held: number; freed: number }; one: { peak: number; before: number }; eight: { peak: number; before: number } }

/** Runs memory-child.ts with `env` over this process's environment less any MALLOC_* setting. */
async function measure(env: Record<string, string>): Promise<ChildResult> {
  const root = path.resolve(import.meta.dirname, '../..');
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('MALLOC_')));
  const { stdout } = await promisify(execFile)(path.join(root, 'node_modules', '.bin', 'vite-node'), [path.join(root, 'test', 'spn', 'memory-child.ts')], { cwd: root, maxBuffer: 1 << 20, env: { ...base, ...env } });
  return JSON.parse(stdout.trim().split('\n').pop()!) as ChildResult;
}

describe.skipIf(!hasClearRefs)('memory at 256×256', () => {
  it('evaluating 8 images takes no more memory than evaluating 1 (within 10%)', { timeout: 900_000 }, async (ctx) => {
    const r = await measure(ALLOCATOR);
    ctx.skip(!r.probe.returns, `freed memory stays in malloc's heap (RSS ${r.probe.held.toFixed(0)} MB with a 16 MB tensor, ${r.probe.freed.toFixed(0)} after freeing it): the addon's mallopt() overrides the test's glibc settings (issue #21)`);
    console.log(`peak RSS: 1 image ${r.one.peak.toFixed(0)} MB (from ${r.one.before.toFixed(0)}), 8 images ${r.eight.peak.toFixed(0)} MB (from ${r.eight.before.toFixed(0)})`);
    expect(r.eight.peak).toBeLessThanOrEqual(r.one.peak * 1.1);
  });

  // As a user runs it: no MALLOC_* in the environment, so the addon's own mallopt() (blocks up to
  // 32 MB kept in the heap, trim past 256 MB) is in effect and malloc's cache counts in RSS; what
  // keeps 8 images to the peak of 1 here is evaluate() handing free pages back once they pile up
  // 64 MB (torch.trimHeap). So a peak may hold up to that much of malloc's cache more than
  // another: 1 image 482 MB (10 over its start), 8 images 548 (66 over) in one run; without the
  // trims 8 images took 535 MB more than 1, with one trim a second up to 600.
  it('and so it does with the addon\'s own allocator settings (within 10% and the 64 MB trimHeap lets pile up)', { timeout: 900_000 }, async () => {
    const r = await measure({ SPN_MEMORY_OWN_SETTINGS: '1' });
    console.log(`peak RSS, the addon's settings: 1 image ${r.one.peak.toFixed(0)} MB (from ${r.one.before.toFixed(0)}), 8 images ${r.eight.peak.toFixed(0)} MB (from ${r.eight.before.toFixed(0)})`);
    expect(r.probe.returns).toBe(false); // the addon's settings are in effect: a freed 16 MB buffer stays in the heap
    expect(r.eight.peak).toBeLessThanOrEqual(r.one.peak * 1.1 + 64);
  });
});

describe('evaluation chunks', () => {
  const cfg = (name: string, over: Record<string, unknown> = {}) => {
    const p = PRESETS[name]!;
    return parseModelConfig({ ...p.model, height: p.shape[0], width: p.shape[1], channels: p.shape[2], ...over });
  };
  it('keep the small presets\' batches whole and take one 256×256 image at a time', () => {
    expect(evalChunk(cfg('fmnist-cpu'), 64)).toBe(64);
    expect(evalChunk(cfg('cifar-cpu'), 50)).toBe(50);
    expect(evalChunk(cfg('imagenet64-gpu'), 50)).toBeLessThanOrEqual(16);
    expect(evalChunk(cfg('celebahq256-gpu'), 50)).toBe(1);
    expect(evalChunk(cfg('celebahq256-gpu', { stage: 'depth', bits: 5, givenBits: 3 }), 64)).toBe(1);
    expect(evalChunk(cfg('celebahq256-base'), 64)).toBeGreaterThanOrEqual(1);
  });
});
