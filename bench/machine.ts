// What a benchmark ran on: CPU, memory, GPU and the libtorch build, recorded in every result;
// and the parts every benchmark script shares: the report header and the command-line tail.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { pathToFileURL } from 'node:url';
import { writeFileAtomic } from '../src/fsutil.js';
import { ArgError } from '../src/errors.js';
import { native } from '../src/torch/binding.js';

export interface MachineInfo {
  /** Logical CPUs the OS reports. */
  cpus: number;
  cpuModel: string;
  /** CPUs this process may use (affinity, cgroup limits): what `nproc` says. */
  cores: number;
  memGB: number;
  platform: string;
  node: string;
  /** GPU names as nvidia-smi lists them, when libtorch sees CUDA devices. */
  gpu?: string[];
}

export function describeMachine(): MachineInfo {
  const cpus = os.cpus();
  const info: MachineInfo = {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    cores: os.availableParallelism(),
    memGB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    node: process.version,
  };
  const torch = native.info();
  if (torch.cuda) {
    try {
      const out = execFileSync('nvidia-smi', ['--query-gpu=name,memory.total', '--format=csv,noheader'], { encoding: 'utf8', timeout: 10_000 });
      info.gpu = out.trim().split('\n').map((l) => l.trim());
    } catch {
      info.gpu = Array.from({ length: torch.cudaDevices }, (_, i) => `cuda:${i} (nvidia-smi unavailable)`);
    }
  }
  return info;
}

export interface TorchBuildInfo { version: string; threads: number; blas: string; cuda: boolean; cudaDevices: number }

/** The CPU's flags that decide which kernels are fast (bf16 with AVX512-BF16 or AMX), for a report: none when /proc/cpuinfo cannot be read. */
export function cpuFlags(): string[] {
  try {
    const info = fs.readFileSync('/proc/cpuinfo', 'utf8');
    return ['avx512_bf16', 'amx_tile', 'avx512f', 'avx2'].filter((f) => new RegExp(`\\b${f}\\b`).test(info));
  } catch {
    return [];
  }
}

export function describeTorch(): TorchBuildInfo {
  const i = native.info();
  return {
    version: i.version,
    threads: native.getNumThreads(),
    blas: /BLAS_INFO=([^,\s]+)/.exec(i.config)?.[1] ?? 'unknown',
    cuda: i.cuda,
    cudaDevices: i.cudaDevices,
  };
}

/** The fields every benchmark report starts with; BENCHMARKS.md prints them as the setup. */
export interface ReportHeader<B extends string> {
  benchmark: B;
  machine: MachineInfo;
  libtorch: string;
  threads: number;
  device: string;
  date: string;
  /** How the benchmark was started (node's arguments after the executable). */
  command: string;
  quick: boolean;
}

/**
 * The header of a report made now on this machine. With `{ blas: true }` it also names the BLAS
 * libtorch was built with (the matmul-bound benchmarks: engine and throughput), right after
 * `libtorch`, so field order matches the reports written before this helper existed.
 */
export function reportHeader<B extends string>(benchmark: B, device: string, quick: boolean): ReportHeader<B>;
export function reportHeader<B extends string>(benchmark: B, device: string, quick: boolean, o: { blas: true }): ReportHeader<B> & { blas: string };
export function reportHeader<B extends string>(benchmark: B, device: string, quick: boolean, o: { blas?: boolean } = {}): ReportHeader<B> & { blas?: string } {
  const lt = describeTorch();
  return {
    benchmark,
    machine: describeMachine(),
    libtorch: lt.version,
    ...(o.blas ? { blas: lt.blas } : {}),
    threads: lt.threads,
    device,
    date: new Date().toISOString(),
    command: process.argv.slice(1).join(' '),
    quick,
  };
}

/** The command-line tail of every benchmark: the report as JSON on stdout, and in `jsonPath` when given. */
export function emitReport(report: object, jsonPath?: string): void {
  const json = JSON.stringify(report, null, 2) + '\n';
  process.stdout.write(json);
  if (jsonPath) writeFileAtomic(jsonPath, json);
}

/**
 * Runs `main` when the module at `importMetaUrl` is the script node was started with (not when a
 * test or bench/run.ts imports it). A failure prints `name: message` and exits with status 2.
 */
export function runIfMain(importMetaUrl: string, name: string, main: () => void | Promise<void>): void {
  if (!process.argv[1] || importMetaUrl !== pathToFileURL(process.argv[1]).href) return;
  const fail = (err: unknown): never => {
    process.stderr.write(`${name}: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(2);
  };
  try {
    const done = main();
    if (done) done.catch(fail);
  } catch (err) {
    fail(err);
  }
}

/** Median of a non-empty list. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Rejects a --device other than cpu or cuda, and cuda where libtorch sees no GPU. */
export function checkDevice(device: string): void {
  if (device !== 'cpu' && device !== 'cuda') throw new ArgError(`--device ${String(device)}: expected cpu or cuda`);
  if (device === 'cuda' && !native.info().cuda) throw new ArgError('--device cuda: libtorch sees no CUDA device (see `spn info`)');
}
