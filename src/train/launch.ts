// `spn train --nproc N [--nnodes K --node-rank R --master-addr HOST --master-port P]`: starts
// N worker processes on this machine, each running the same `spn train` command with the
// variables torchrun sets (RANK = R·N + i, WORLD_SIZE = K·N, LOCAL_RANK = i, LOCAL_WORLD_SIZE =
// N, MASTER_ADDR, MASTER_PORT; with --nproc alone, like `torchrun --standalone`, the master is
// this machine on a free port). The workers rendezvous through c10d (src/torch/distributed.ts);
// this file only starts, watches and stops processes, and loads no libtorch.
//
// A process that already has RANK or WORLD_SIZE in its environment (torchrun, srun through a
// wrapper, a Kubernetes PyTorchJob, or this launcher) is a worker and never launches: its
// --nproc, --nnodes, --node-rank, --master-addr and --master-port, when given, must agree with
// its environment.
//
// Output: rank 0's stdout and stderr pass through (its progress bar, its log, its errors); the
// other ranks print nothing but errors, each line prefixed with [rank r]. Signals: the workers
// run in their own process groups, so a Ctrl-C on the terminal reaches this process alone, which
// passes SIGINT and SIGTERM on to every worker once per signal (the first stops the run after a
// step, with a checkpoint; a second quits at once). When a worker fails (a non-zero exit
// code or a signal), the others are given a few seconds to stop on their own (they see the
// failed peer at their next collective), then SIGTERM, then SIGKILL; this process then says
// which rank failed first and exits with its code (1 for a signal). A worker whose launcher
// dies (even by SIGKILL) sees its stdin close and stops as on SIGTERM.
import { spawn, type ChildProcess } from 'node:child_process';
import * as net from 'node:net';
import { ArgError } from '../errors.js';

/** The launch flags of `spn train`. */
export interface LaunchFlags {
  nproc?: number;
  nnodes?: number;
  nodeRank?: number;
  masterAddr?: string;
  masterPort?: number;
}

export type LaunchPlan =
  /** One process, as spn train has always run. */
  | { mode: 'single' }
  /** A rank of a job someone else launched (the torchrun variables are set). */
  | { mode: 'worker' }
  /** Start nproc workers here. masterPort null: a free port (--nproc alone). */
  | { mode: 'launch'; nproc: number; nnodes: number; nodeRank: number; masterAddr: string; masterPort: number | null };

/** torchrun's default port for a job of several machines. */
export const DEFAULT_MASTER_PORT = 29500;

/**
 * Worker processes `spn train` starts on this machine when --nproc is not given: one process,
 * its threads per torch/threads.ts. The distributed benchmark (`npm run bench -- --only
 * distributed`) compares ranks against threads on a CPU: one process on every thread measured
 * faster than one rank per core (BENCHMARKS.md); where ranks win, this is the switch.
 */
export const DEFAULT_NPROC = 1;

/** Whether this process was started as one rank of a job (as launchedDistributed in src/torch/distributed.ts, without loading libtorch). */
export function isWorker(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.RANK !== undefined || env.WORLD_SIZE !== undefined;
}

/**
 * What `spn train` does with these flags in this environment: launch workers, run as a worker,
 * or run alone. Every inconsistency is an ArgError naming the flag, before anything starts.
 */
export function planLaunch(f: LaunchFlags, env: NodeJS.ProcessEnv = process.env): LaunchPlan {
  if (isWorker(env)) {
    const job = `this process is rank ${env.RANK ?? '?'} of WORLD_SIZE=${env.WORLD_SIZE ?? '?'} (RANK/WORLD_SIZE set by its launcher, e.g. torchrun), a worker that launches nothing`;
    const clash = (flag: string, given: number | string | undefined, envName: string, expected: string | undefined) => {
      if (given !== undefined && expected !== undefined && String(given) !== expected) {
        throw new ArgError(`${flag} ${given} disagrees with ${envName}=${expected}: ${job}; drop ${flag} or make it agree`);
      }
    };
    const localWorld = env.LOCAL_WORLD_SIZE ?? env.WORLD_SIZE;
    clash('--nproc', f.nproc, env.LOCAL_WORLD_SIZE !== undefined ? 'LOCAL_WORLD_SIZE' : 'WORLD_SIZE', localWorld);
    if (f.nnodes !== undefined && env.WORLD_SIZE !== undefined && localWorld !== undefined && f.nnodes * Number(localWorld) !== Number(env.WORLD_SIZE)) {
      throw new ArgError(`--nnodes ${f.nnodes} × ${localWorld} processes per machine disagrees with WORLD_SIZE=${env.WORLD_SIZE}: ${job}; drop --nnodes or make it agree`);
    }
    if (f.nodeRank !== undefined && env.RANK !== undefined && localWorld !== undefined) {
      clash('--node-rank', f.nodeRank, 'RANK / LOCAL_WORLD_SIZE', String(Math.floor(Number(env.RANK) / Number(localWorld))));
    }
    clash('--master-addr', f.masterAddr, 'MASTER_ADDR', env.MASTER_ADDR);
    clash('--master-port', f.masterPort, 'MASTER_PORT', env.MASTER_PORT);
    return { mode: 'worker' };
  }
  const nproc = f.nproc ?? DEFAULT_NPROC;
  const nnodes = f.nnodes ?? 1;
  if (f.nodeRank !== undefined && f.nodeRank >= nnodes) {
    throw new ArgError(`--node-rank ${f.nodeRank}: expected 0 to ${nnodes - 1} for --nnodes ${nnodes}`);
  }
  if (nnodes > 1 && f.masterAddr === undefined) {
    throw new ArgError(`--nnodes ${nnodes} needs --master-addr: the address of node 0 (where rank 0 runs) that every machine can reach`);
  }
  if (nnodes > 1 && f.nodeRank === undefined) {
    throw new ArgError(`--nnodes ${nnodes} needs --node-rank: this machine's index, 0 to ${nnodes - 1} (rank 0 runs on node 0)`);
  }
  if (nproc * nnodes === 1) {
    const stray = (['masterAddr', 'masterPort', 'nodeRank'] as const).filter((k) => f[k] !== undefined);
    if (stray.length) {
      const flag = { masterAddr: '--master-addr', masterPort: '--master-port', nodeRank: '--node-rank' }[stray[0]!];
      throw new ArgError(`${flag} applies to a job of several processes (--nproc or --nnodes above 1)`);
    }
    return { mode: 'single' };
  }
  return {
    mode: 'launch', nproc, nnodes, nodeRank: f.nodeRank ?? 0, masterAddr: f.masterAddr ?? '127.0.0.1',
    masterPort: f.masterPort ?? (nnodes > 1 ? DEFAULT_MASTER_PORT : null),
  };
}

export interface LaunchOptions {
  /** What every worker runs: [program, ...arguments], e.g. [node, spn's main.js, 'train', ...]. */
  command: string[];
  env?: NodeJS.ProcessEnv;
  /** Seconds the other workers get to stop on their own after one fails, before SIGTERM. Default 3. */
  settleS?: number;
  /** Seconds between SIGTERM and SIGKILL. Default 5. */
  graceS?: number;
  /** Where the launcher's own messages and the other ranks' prefixed lines go. Default process.stderr. */
  stderr?: NodeJS.WritableStream;
}

/** A TCP port nobody listens on at this moment (the rendezvous port of --nproc alone). */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(0, host, resolve);
  });
  const { port } = srv.address() as net.AddressInfo;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

interface Worker {
  rank: number;
  child: ChildProcess;
  exit: { code: number | null; signal: NodeJS.Signals | null } | null;
}

/** Writes each line of a stream to `out` with a prefix. */
function prefixLines(stream: NodeJS.ReadableStream, prefix: string, out: NodeJS.WritableStream): void {
  let rest = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    rest += chunk;
    let nl: number;
    while ((nl = rest.indexOf('\n')) >= 0) {
      out.write(`${prefix}${rest.slice(0, nl)}\n`);
      rest = rest.slice(nl + 1);
    }
  });
  stream.on('end', () => {
    if (rest) out.write(`${prefix}${rest}\n`);
  });
}

/**
 * Runs the workers of this machine to their end. Returns the exit code for this process: 0 when
 * every worker exited 0, else the first failed worker's code (1 when a signal ended it; 130
 * after a second Ctrl-C).
 */
export async function launch(plan: Extract<LaunchPlan, { mode: 'launch' }>, o: LaunchOptions): Promise<number> {
  const out = o.stderr ?? process.stderr;
  const settleMs = (o.settleS ?? 3) * 1000;
  const graceMs = (o.graceS ?? 5) * 1000;
  const masterPort = plan.masterPort ?? (await freePort());
  const worldSize = plan.nnodes * plan.nproc;
  const [program, ...args] = o.command;
  if (!program) throw new ArgError('launch: an empty command');
  const workers: Worker[] = [];
  for (let i = 0; i < plan.nproc; i++) {
    const rank = plan.nodeRank * plan.nproc + i;
    const child = spawn(program, args, {
      env: {
        ...(o.env ?? process.env),
        RANK: String(rank), WORLD_SIZE: String(worldSize), LOCAL_RANK: String(i), LOCAL_WORLD_SIZE: String(plan.nproc),
        GROUP_RANK: String(plan.nodeRank), MASTER_ADDR: plan.masterAddr, MASTER_PORT: String(masterPort),
        SPN_LAUNCHER_PID: String(process.pid),
      },
      // stdin: a pipe the worker watches (it closes when this process dies); rank 0's output passes through.
      stdio: ['pipe', rank === 0 ? 'inherit' : 'pipe', rank === 0 ? 'inherit' : 'pipe'],
      detached: true, // own process group: a terminal's Ctrl-C reaches the launcher, which passes it on once
    });
    if (rank !== 0) {
      prefixLines(child.stdout!, `[rank ${rank}] `, out);
      prefixLines(child.stderr!, `[rank ${rank}] `, out);
    }
    child.stdin!.on('error', () => {}); // a worker that exited closes its end
    workers.push({ rank, child, exit: null });
  }

  let signals = 0;
  const pass = (sig: NodeJS.Signals) => () => {
    signals++;
    for (const w of workers) if (!w.exit) w.child.kill(sig);
  };
  // (SIGHUP, a closed terminal, ends this process as by default; the workers then see their stdin close.)
  const handlers = (['SIGINT', 'SIGTERM'] as const).map((sig) => [sig, pass(sig)] as const);
  for (const [sig, h] of handlers) process.on(sig, h);

  let first: (Worker & { at: number }) | null = null;
  const timers: NodeJS.Timeout[] = [];
  const stopOthers = () => {
    const kill = (sig: NodeJS.Signals) => () => {
      for (const w of workers) if (!w.exit) w.child.kill(sig);
    };
    timers.push(setTimeout(kill('SIGTERM'), settleMs), setTimeout(kill('SIGKILL'), settleMs + graceMs));
  };
  try {
    await Promise.all(workers.map((w) => new Promise<void>((resolve) => {
      w.child.on('error', (err) => {
        out.write(`spn: could not start rank ${w.rank}: ${err.message}\n`);
        if (!w.exit) w.exit = { code: 1, signal: null };
        if (!first) {
          first = { ...w, at: Date.now() };
          stopOthers();
        }
        resolve();
      });
      w.child.on('exit', (code, signal) => {
        w.exit = { code, signal };
        if ((code !== 0 || signal !== null) && !first) {
          first = { ...w, at: Date.now() };
          stopOthers();
        }
      });
      w.child.on('close', () => resolve()); // after 'exit', once its output is all read
    })));
  } finally {
    for (const t of timers) clearTimeout(t);
    for (const [sig, h] of handlers) process.off(sig, h);
  }
  const failed = first as (Worker & { at: number }) | null;
  if (!failed) return 0;
  const { code, signal } = failed.exit!;
  if (signals > 1 && code === 130) return 130; // quit at once by a second Ctrl-C: nothing to add
  const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
  const others = workers.filter((w) => w !== workers.find((x) => x.rank === failed.rank) && w.exit && (w.exit.code !== 0 || w.exit.signal));
  const rest = others.length ? `; ${others.map((w) => `rank ${w.rank} ${w.exit!.signal ? `was stopped by ${w.exit!.signal}` : `exited with code ${w.exit!.code}`}`).join(', ')}` : '';
  out.write(`spn: rank ${failed.rank} of ${worldSize} (pid ${failed.child.pid}) ${how}, the first to fail${rest}\n`);
  return signal ? 1 : (code ?? 1);
}

/**
 * In a worker this launcher started: when the launcher is gone (its end of stdin closes, even
 * after a SIGKILL), stop as on SIGTERM (the trainer checkpoints after the step; before training
 * starts, SIGTERM ends the process).
 */
export function watchLauncher(env: NodeJS.ProcessEnv = process.env): void {
  if (!env.SPN_LAUNCHER_PID) return;
  const stdin = process.stdin;
  // Other ranks write into pipes the launcher read: once it is gone, writing there fails (EPIPE),
  // which must not end the worker.
  for (const out of [process.stdout, process.stderr]) out.on('error', () => {});
  const gone = () => {
    process.stderr.write(`spn: rank ${env.RANK}: the launcher (pid ${env.SPN_LAUNCHER_PID}) is gone; stopping\n`);
    process.kill(process.pid, 'SIGTERM');
  };
  stdin.once('end', gone);
  stdin.once('error', gone);
  stdin.resume();
  (stdin as { unref?: () => void }).unref?.(); // never what keeps the worker alive
}
