import { describe, expect, it } from 'vitest';
import { presetTable } from '../../src/cli/presets.run.js';
import { PRESETS, parseModelConfig } from '../../src/spn/config.js';
import { SPN } from '../../src/spn/model.js';

describe('spn presets', () => {
  it('counts parameters on the meta device exactly as a real model has them', () => {
    const rows = presetTable();
    expect(rows.map((r) => r.name)).toEqual(Object.keys(PRESETS));
    const p = PRESETS['fmnist-cpu']!;
    const [height, width, channels] = p.shape;
    const real = new SPN(parseModelConfig({ ...p.model, height, width, channels }));
    expect(rows.find((r) => r.name === 'fmnist-cpu')!.parameters).toBe(real.numParameters());
    real.dispose();
    // the paper-sized presets are tens of millions of parameters
    expect(rows.find((r) => r.name === 'imagenet32-gpu')!.parameters).toBeGreaterThan(20e6);
  });
});
