import { describe, expect, it } from 'vitest';
import { blasLibraries, buildInfo, formatInfo } from '../../src/cli/info.run.js';

const config = 'PyTorch built with:\n  - Build settings: BLAS_INFO=open, BUILD_TYPE=Release, LAPACK_INFO=open, TORCH_VERSION=2.1.0, USE_CUDA=ON, \n';
const maps = [
  '7f0000000000-7f0000001000 r-xp 00000000 08:01 123 /usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0',
  '7f0000001000-7f0000002000 r--p 00001000 08:01 123 /usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0',
  '7f0000003000-7f0000004000 r-xp 00000000 08:01 124 /usr/lib/x86_64-linux-gnu/libtorch_cpu.so.1.13',
  '7f0000005000-7f0000006000 rw-p 00000000 00:00 0 ',
].join('\n');

describe('spn info', () => {
  it('finds BLAS libraries in /proc/self/maps', () => {
    expect(blasLibraries(maps)).toEqual(['/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0']);
    expect(blasLibraries('')).toEqual([]);
  });

  it('builds the JSON report from native.info() and the memory map', () => {
    const r = buildInfo({ version: '2.1.0', config, threads: 8, cuda: true, cudaDevices: 2, cudaCompiled: true }, maps);
    expect(r).toEqual({
      libtorch: '2.1.0',
      cuda: { compiled: true, available: true, devices: 2 },
      threads: 8,
      blas: { build: 'open', lapack: 'open', openblasLoaded: true, libraries: ['/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0'] },
      node: process.version,
      platform: `${process.platform} ${process.arch}`,
    });
    expect(formatInfo(r)).toMatch(/cuda\s+yes, 2 devices/);
    const cpu = buildInfo({ version: '1.13.0', config: 'no settings', threads: 1, cuda: false, cudaDevices: 0, cudaCompiled: false }, '');
    expect(cpu.blas).toEqual({ build: 'unknown', lapack: 'unknown', openblasLoaded: false, libraries: [] });
    expect(formatInfo(cpu)).toMatch(/openblas not loaded/);
  });
});
