// The engine benchmark in --quick mode: it runs, and its JSON has the documented shape, names
// the libtorch build it measured, and its FLOP rates follow from its timings.
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import { expect, it } from 'vitest';
import { runEngineBench } from '../../bench/engine.js';
import * as torch from '../../src/torch/index.js';

it('runs the engine benchmark in quick mode and reports the documented JSON', () => {
  const r = runEngineBench({ device: 'cpu', quick: true });
  const back = JSON.parse(JSON.stringify(r)) as typeof r;
  expect(back.benchmark).toBe('engine');
  expect(back.machine.cpus).toBeGreaterThan(0);
  expect(back.machine.cores).toBeGreaterThan(0);
  expect(typeof back.machine.cpuModel).toBe('string');
  expect(back.machine.memGB).toBeGreaterThan(0);
  expect(back.libtorch).toMatch(/^\d+\.\d+/);
  expect(back.threads).toBeGreaterThan(0);
  expect(Number.isNaN(Date.parse(back.date))).toBe(false);
  expect(typeof back.command).toBe('string');
  const info = torch.native.info();
  expect(back.build.version).toBe(info.version);
  expect(back.libtorch).toBe(info.version);
  expect(back.build.cudaCompiled).toBe(info.cudaCompiled);
  // the addon named is a file, and the one node loaded (the binding requires it by absolute path)
  expect(back.build.addon).toMatch(/\.node$/);
  expect(fs.existsSync(back.build.addon)).toBe(true);
  expect(Object.keys(createRequire(import.meta.url).cache)).toContain(fs.realpathSync(back.build.addon));
  expect(typeof back.build.cpuBf16).toBe('boolean');
  expect(back.matmul.map((m) => [m.dtype, m.n])).toEqual([['float32', 32], ['float32', 64], ['bfloat16', 32], ['bfloat16', 64]]);
  for (const m of back.matmul) {
    expect(m.ms).toBeGreaterThan(0);
    expect(m.gflops).toBeCloseTo((2 * m.n ** 3) / (m.ms * 1e6), 6);
  }
  // quick mode's tiny conv (2×8×4×4, 3×3): fp32 and under bf16 autocast
  expect(back.conv.map((c) => c.precision)).toEqual(['fp32', 'bf16']);
  for (const c of back.conv) {
    expect([c.batch, c.inChannels, c.outChannels, c.grid, c.kernel, c.padding]).toEqual([2, 8, 8, 4, 3, 1]);
    const flop = 2 * 2 * 8 * 4 * 4 * 8 * 9;
    expect(c.fwd_gflops).toBeCloseTo(flop / (c.fwd_ms * 1e6), 6);
    expect(c.fwd_bwd_gflops).toBeCloseTo((3 * flop) / (c.fwd_bwd_ms * 1e6), 6);
  }
  // aten::scaled_dot_product_attention arrived in PyTorch 2.0: libtorch 1.13 lacks it, 2.x has it
  const fusedOp = Number(info.version.split('.')[0]) >= 2;
  expect(back.attention.map((a) => [a.precision, a.impl])).toEqual([['fp32', 'fused'], ['fp32', 'composed'], ['bf16', 'fused'], ['bf16', 'composed']]);
  for (const a of back.attention) {
    expect([a.batch, a.heads, a.seq, a.headDim]).toEqual([2, 2, 5, 4]);
    expect(a.fusedOp).toBe(fusedOp);
    expect(a.fwd_bwd_gflops).toBeCloseTo((12 * 2 * 2 * 25 * 4) / (a.fwd_bwd_ms * 1e6), 6);
  }
  expect(back.block.ts_ms).toBeGreaterThan(0);
  expect(back.block.cpp_ms).toBeGreaterThan(0);
  expect(back.block.overhead).toBeCloseTo(back.block.ts_ms / back.block.cpp_ms - 1, 10);
});
