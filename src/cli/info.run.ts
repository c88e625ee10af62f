// `spn info` (definition in info.ts): what the engine runs on (libtorch build, CUDA, threads,
// BLAS, Node).
import * as fs from 'node:fs';
import { native } from '../torch/binding.js';
import type { InfoCommandOptions } from './info.js';

/** What native.info() reports (the fields this report uses). */
export interface NativeInfo {
  version: string;
  config: string;
  threads: number;
  cuda: boolean;
  cudaDevices: number;
  cudaCompiled: boolean;
}

export interface InfoReport {
  libtorch: string;
  cuda: { compiled: boolean; available: boolean; devices: number };
  threads: number;
  blas: {
    /** BLAS_INFO from libtorch's build configuration (e.g. "generic" = system libblas). */
    build: string;
    lapack: string;
    /** Whether libopenblas is mapped into this process: the fast path on Debian/Ubuntu. */
    openblasLoaded: boolean;
    /** BLAS-like shared libraries mapped into this process (openblas, blas, mkl, blis). */
    libraries: string[];
  };
  node: string;
  platform: string;
}

/** Shared-library paths from /proc/self/maps text that look like BLAS implementations. */
export function blasLibraries(maps: string): string[] {
  const libs = new Set<string>();
  for (const line of maps.split('\n')) {
    const file = line.trim().split(/\s+/)[5];
    if (file && /\/lib[^/]*(openblas|blas|mkl|blis)[^/]*\.so/i.test(file)) libs.add(file);
  }
  return [...libs];
}

export function buildInfo(n: NativeInfo, maps: string): InfoReport {
  const field = (key: string) => new RegExp(`${key}=([^,\\s]+)`).exec(n.config)?.[1] ?? 'unknown';
  const libraries = blasLibraries(maps);
  return {
    libtorch: n.version,
    cuda: { compiled: n.cudaCompiled, available: n.cuda, devices: n.cudaDevices },
    threads: n.threads,
    blas: { build: field('BLAS_INFO'), lapack: field('LAPACK_INFO'), openblasLoaded: libraries.some((l) => /openblas/i.test(l)), libraries },
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
  };
}

export function formatInfo(r: InfoReport): string {
  const cuda = r.cuda.available ? `yes, ${r.cuda.devices} device${r.cuda.devices === 1 ? '' : 's'}` : r.cuda.compiled ? 'built with CUDA, no device visible' : 'no (CPU-only libtorch)';
  return [
    `libtorch   ${r.libtorch}`,
    `cuda       ${cuda}`,
    `threads    ${r.threads}`,
    `blas       ${r.blas.build} (lapack ${r.blas.lapack}); openblas ${r.blas.openblasLoaded ? 'loaded' : 'not loaded'}`,
    ...r.blas.libraries.map((l) => `           ${l}`),
    `node       ${r.node} (${r.platform})`,
  ].join('\n') + '\n';
}

function readMaps(): string {
  try {
    return fs.readFileSync('/proc/self/maps', 'utf8');
  } catch {
    return ''; // not Linux: no way to list mapped libraries
  }
}

export async function run(opts: InfoCommandOptions): Promise<void> {
  const i = native.info();
  const report = buildInfo({ ...i, threads: native.getNumThreads() }, readMaps());
  process.stdout.write(opts.json ? JSON.stringify(report, null, 2) + '\n' : formatInfo(report));
}
