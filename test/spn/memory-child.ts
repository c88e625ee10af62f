// The child process of memory.test.ts: a small model of the CelebA-HQ recipe's slices (S=8 at
// 256×256), exact evaluation of 1 and of 8 images, each evaluation's peak RSS printed as JSON.
import * as fs from 'node:fs';
import { memorySet } from '../../src/data/sets.js';
import { parseModelConfig } from '../../src/spn/config.js';
import { SPN } from '../../src/spn/model.js';
import { evaluate } from '../../src/store/evaluate.js';
import * as torch from '../../src/torch/index.js';

const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(fs.readFileSync('/proc/self/status', 'utf8'))![1]);

/** The RSS high-water mark (MB) of fn alone, and the RSS before it. */
function peakOf(fn: () => void): { peak: number; before: number } {
  fs.writeFileSync('/proc/self/clear_refs', '5');
  const before = kb('VmRSS');
  fn();
  return { peak: kb('VmHWM') / 1024, before: before / 1024 };
}

function images(n: number, seed: number): Uint8Array {
  const data = new Uint8Array(n * 256 * 256 * 3);
  let s = seed;
  for (let i = 0; i < data.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    data[i] = (s >>> 24) & 0xff;
  }
  return data;
}

/**
 * Whether memory a tensor frees goes back to the system at once, as the test's glibc settings ask
 * (ALLOCATOR in memory.test.ts): 16 MB filled, then freed, RSS before and after the free (MB).
 * The addon's own mallopt() (native/spn_torch.cc) overrides those settings: then freed buffers
 * stay in malloc's heap, RSS counts them, and the evaluations are not measured.
 */
function freedMemoryReturns(): { returns: boolean; held: number; freed: number } {
  const t = torch.full([4 << 20], 1);
  const held = kb('VmRSS') / 1024;
  t.dispose();
  const freed = kb('VmRSS') / 1024;
  return { returns: held - freed > 12, held, freed };
}

// SPN_MEMORY_OWN_SETTINGS=1: the addon's own allocator settings (memory.test.ts's second case),
// where a 16 MB buffer stays in malloc's heap by design: the probe is reported, not required.
const ownSettings = process.env.SPN_MEMORY_OWN_SETTINGS === '1';
const probe = freedMemoryReturns();
if (!probe.returns && !ownSettings) {
  process.stdout.write(JSON.stringify({ probe }) + '\n');
  process.exit(0);
}
torch.setNumThreads(1);
const cfg = parseModelConfig({ height: 256, width: 256, channels: 3, bits: 8, scale: 8, dim: 16, heads: 2, condLayers: 1, decLayers: 1, kernel: 3 });
const model = new SPN(cfg);
const set = memorySet(images(8, 7), { n: 8, h: 256, w: 256, c: 3 });
evaluate(model, set, { limit: 1 }); // warm-up: thread pools, the allocator's arenas
const one = peakOf(() => evaluate(model, set, { limit: 1 }));
const eight = peakOf(() => evaluate(model, set, { limit: 8 }));
model.dispose();
process.stdout.write(JSON.stringify({ probe, one, eight }) + '\n');
