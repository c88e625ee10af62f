// The engine benchmark in --quick mode: it runs, and its JSON has the documented shape.
import { expect, it } from 'vitest';
import { runEngineBench } from '../../bench/engine.js';

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
  expect(back.matmul.map((m) => m.n)).toEqual([32, 64]);
  for (const m of back.matmul) {
    expect(m.dtype).toBe('float32');
    expect(m.ms).toBeGreaterThan(0);
    expect(m.gflops).toBeGreaterThan(0);
  }
  expect(back.block.ts_ms).toBeGreaterThan(0);
  expect(back.block.cpp_ms).toBeGreaterThan(0);
  expect(back.block.overhead).toBeCloseTo(back.block.ts_ms / back.block.cpp_ms - 1, 10);
});
