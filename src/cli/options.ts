// Option parsers for commander. Each rejects a bad value at parse time, before any command does
// work or writes anything, with an ArgError naming the flag, the value and what was expected.
// This file (like every command definition in this folder) imports no libtorch.
import * as path from 'node:path';
import type { Command } from 'commander';
import { ArgError } from '../errors.js';
import { orList } from '../format.js';

type Parser<T> = (value: string) => T;

/** A whole number in [min, max]; `what` says it in words for the message. */
function intIn(flag: string, min: number, max: number, what: string): Parser<number> {
  return (v: string): number => {
    const n = /^[+-]?\d+$/.test(v.trim()) ? Number(v) : NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) throw new ArgError(`${flag} ${v}: expected ${what}`);
    return n;
  };
}

/** An integer ≥ 1 (counts, sizes, steps, batch sizes, threads). */
export function positiveInt(flag: string): Parser<number> {
  return intIn(flag, 1, Number.MAX_SAFE_INTEGER, 'a positive integer');
}

/** An integer ≥ 0 (seeds; counts where 0 means "all"). */
export function nonNegativeInt(flag: string): Parser<number> {
  return intIn(flag, 0, Number.MAX_SAFE_INTEGER, 'an integer ≥ 0');
}

/** An integer in [min, max] (bit depths). */
export function intRange(flag: string, min: number, max: number): Parser<number> {
  return intIn(flag, min, max, `an integer from ${min} to ${max}`);
}

/** A finite number > 0 (minutes, learning rates, temperatures). */
export function positiveNum(flag: string): Parser<number> {
  return (v: string): number => {
    const n = v.trim() === '' ? NaN : Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new ArgError(`${flag} ${v}: expected a positive number`);
    return n;
  };
}

/** One of a fixed set of words. */
export function choice<T extends string>(flag: string, values: readonly T[]): Parser<T> {
  return (v: string): T => {
    if (!(values as readonly string[]).includes(v)) throw new ArgError(`${flag} ${v}: expected ${orList(values)}`);
    return v as T;
  };
}

/** A libtorch device this project runs on: cpu, cuda or cuda:N. */
export function device(flag = '--device'): Parser<string> {
  return (v: string): string => {
    if (v === 'cpu' || v === 'cuda' || /^cuda:\d+$/.test(v)) return v;
    throw new ArgError(`${flag} ${v}: expected cpu, cuda or cuda:N`);
  };
}

/** A TCP port, 0 (any free port) to 65535. */
export function port(flag = '--port'): Parser<number> {
  return (v: string): number => {
    if (!/^\d{1,5}$/.test(v) || Number(v) > 65535) throw new ArgError(`${flag} must be a whole number from 0 to 65535, got ${JSON.stringify(v)}`);
    return Number(v);
  };
}

/** A TCP port to connect to or listen on, 1 to 65535. */
export function tcpPort(flag: string): Parser<number> {
  return intIn(flag, 1, 65535, 'a TCP port, 1 to 65535');
}

/** A host name or an IP address (no spaces). */
export function host(flag: string): Parser<string> {
  return (v: string): string => {
    const h = v.trim();
    if (!h || /\s/.test(h)) throw new ArgError(`${flag} ${JSON.stringify(v)}: expected a host name or an IP address`);
    return h;
  };
}

/** What a model command works on: one run folder or checkpoint, or a pipeline file. */
export type ModelTarget = { target: string } | { pipeline: string };

/** The [run-dir] argument or --pipeline of `spn <command>`: exactly one of them. */
export function runOrPipeline(command: string, target: string | undefined, pipeline: string | undefined): ModelTarget {
  if (pipeline !== undefined && target !== undefined) throw new ArgError(`give a run folder (${target}) or --pipeline ${pipeline}, not both`);
  if (pipeline !== undefined) return { pipeline };
  if (target === undefined) throw new ArgError(`${command} needs a run folder, a checkpoint or --pipeline <file>`);
  return { target };
}

/** A new run folder's default path: runs/<prefix>-<date>T<time> (UTC, to the second). */
export function defaultRunDir(prefix: string, now = new Date()): string {
  return path.join('runs', `${prefix}-${now.toISOString().replace(/[:.]/g, '-').slice(0, 19)}`);
}

export { orList } from '../format.js';

// Help texts shared by several commands. Defaults commander shows itself ("(default: cpu)") are
// not repeated here; a default that is not a fixed value is described in words as "(default: ...)".
export const DEVICE_HELP = 'cpu, cuda or cuda:N';
/** --threads: the count comes from torch/threads.ts's policy when the flag is absent. */
export const THREADS_HELP = 'libtorch CPU threads (default: SPN_THREADS, else 1)';
export const TRAIN_THREADS_HELP = 'libtorch CPU threads for training (default: SPN_THREADS, else every core in bf16 and in fp32 on libtorch 2.x, 1 in fp32 on 1.x)';
export const SEED_HELP = 'random seed (default: a random one, printed)';

/** The parsed values of drawOptions. */
export interface DrawOptions {
  temperature: number;
  seed?: number;
  device: string;
  ema: boolean;
  threads?: number;
  quiet?: boolean;
}

/** The options every command that draws images shares (`spn sample`, `spn upscale`). */
export function drawOptions(cmd: Command): Command {
  return cmd
    .option('--temperature <t>', 'divide the logits by t (< 1: sharper, > 1: more diverse)', positiveNum('--temperature'), 1)
    .option('--seed <n>', SEED_HELP, nonNegativeInt('--seed'))
    .option('--device <d>', DEVICE_HELP, device(), 'cpu')
    .option('--threads <n>', THREADS_HELP, positiveInt('--threads'))
    .option('--ema', 'use the EMA weights', true)
    .option('--no-ema', 'use the raw (non-EMA) weights')
    .option('--quiet', 'no progress output');
}
