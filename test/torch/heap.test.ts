// torch.trimHeap: malloc's free pages go back once the resident set has grown past the threshold
// over the lowest it was since the last trim, not on every call.
import { describe, expect, it } from 'vitest';
import * as torch from '../../src/torch/index.js';

describe('trimHeap', () => {
  it('trims once the resident set has grown growthMB since the last trim, and not before', () => {
    torch.trimHeap(0); // a trim now: the floor is this process's RSS
    expect(torch.trimHeap()).toBe(false); // nothing grew
    const t = torch.full([24 << 20], 1); // 96 MB, touched
    expect(torch.trimHeap(1e6)).toBe(false); // under a threshold it has not reached
    expect(torch.trimHeap()).toBe(true); // 96 MB over the floor: past the 64 MB default
    expect(torch.trimHeap()).toBe(false); // the floor is now the RSS with the tensor
    t.dispose(); // its 96 MB back to the system (a mapping of its own): the RSS falls below the floor
    expect(torch.trimHeap()).toBe(false);
    const u = torch.full([8 << 20], 1); // 32 MB over the lowest seen, which is now the floor
    expect(torch.trimHeap(16)).toBe(true);
    u.dispose();
  });
});
