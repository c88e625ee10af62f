// What a benchmark ran on: CPU, memory, GPU and the libtorch build, recorded in every result.
import { execFileSync } from 'node:child_process';
import * as os from 'node:os';
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

/** Median of a non-empty list. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
