// `spn train`: trains an SPN (or an upscaling stage) and writes a run folder. The definition and
// every check of the flags (all before anything is written); the work is the trainer, loaded by
// train.run.ts only when the command runs (see main.ts).
import * as fs from 'node:fs';
import type { Command } from 'commander';
import { ArgError } from '../errors.js';
import { isWorker, planLaunch, type LaunchFlags, type LaunchPlan } from '../train/launch.js';
import { checkOptions, checkValue, LAUNCH_OPTIONS, RUN_OPTIONS, resumeFlags, resumeHelp, type OptionSpec, type RunOptionKey, type ValueKind } from '../train/schema.js';
import type { TrainOptions } from '../train/trainer.js';
import { defaultRunDir } from './options.js';

type SetValue = number | string | boolean;
/** The flags as commander parses them, under commander's names (`--dist-timeout` -> distTimeout). */
type Flags = Record<string, unknown>;

/** Commander's attribute name of a flag: --batch-size -> batchSize. */
const attribute = (flag: string) => flag.slice(2).replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

/** The command-line parser of a value kind: the text to a value, then the option table's check. */
function parser(flag: string, v: ValueKind): ((raw: string, prev: unknown) => unknown) | undefined {
  switch (v.kind) {
    case 'int':
      return (raw) => {
        const n = /^[+-]?\d+$/.test(raw.trim()) ? Number(raw) : NaN;
        if (!Number.isSafeInteger(n)) checkValue(flag, v, raw);
        checkValue(flag, v, n);
        return n;
      };
    case 'num':
      return (raw) => {
        const n = raw.trim() === '' ? NaN : Number(raw);
        if (!Number.isFinite(n)) checkValue(flag, v, raw);
        checkValue(flag, v, n);
        return n;
      };
    case 'choice':
    case 'device':
    case 'host':
      return (raw) => {
        checkValue(flag, v, raw.trim());
        return raw.trim();
      };
    case 'set':
      return (raw, prev) => collectSet(raw, prev as Record<string, SetValue> | undefined);
    case 'string':
    case 'flag':
      return undefined;
  }
}

/** --set key=value, repeatable; numbers and booleans are parsed, the rest stays a string. */
function collectSet(pair: string, acc: Record<string, SetValue> | undefined): Record<string, SetValue> {
  const eq = pair.indexOf('=');
  if (eq < 1) throw new ArgError(`--set ${pair}: expected key=value, e.g. model.dim=96`);
  const key = pair.slice(0, eq);
  if (!key.startsWith('model.') && !key.startsWith('train.')) throw new ArgError(`--set ${pair}: expected model.<key>=<value> or train.<key>=<value>`);
  const raw = pair.slice(eq + 1);
  const value = raw === 'true' ? true : raw === 'false' ? false : raw !== '' && Number.isFinite(Number(raw)) ? Number(raw) : raw;
  return { ...acc, [key]: value };
}

/** The long flags given on the command line itself (commander's defaults do not count). */
function explicitFlags(cmd: Command): { key: string; flag: string }[] {
  return cmd.options
    .map((opt) => ({ key: opt.attributeName(), flag: opt.long ?? opt.flags }))
    .filter(({ key }) => cmd.getOptionValueSource(key) === 'cli');
}

/**
 * Checks the flags together and turns them into train()'s options; throws an ArgError (a usage
 * error) for anything train() would ignore or refuse, so nothing is written for a bad command.
 * train() checks every value again (resolveTrainOptions): the same table, the same words.
 */
export function trainOptions(f: Flags, cmd: Command): TrainOptions {
  const given = explicitFlags(cmd);
  const isGiven = (key: string) => given.some((g) => g.key === key);
  const out = (f.out as string | undefined) ?? defaultRunDir('run');
  if (f.resume) {
    if (f.initFrom !== undefined) {
      throw new ArgError(`--resume continues the run in --out; --init-from ${String(f.initFrom)} starts a new run from another run's weights: give one of them`);
    }
    if (!isGiven('out')) throw new ArgError('--resume needs --out <run folder>: the run to continue');
    const applies = new Set(Object.values({ ...RUN_OPTIONS, ...LAUNCH_OPTIONS }).flatMap((s: OptionSpec) => (s.flag && s.resume === 'applies' ? [attribute(s.flag)] : [])));
    const ignored = given.filter((g) => !applies.has(g.key)).map((g) => g.flag);
    if (ignored.length) {
      throw new ArgError(
        `--resume continues ${out} with its saved settings; it takes only ${resumeFlags().join(', ')} and the launch options (${Object.values(LAUNCH_OPTIONS).map((s) => s.flag).join(', ')}), ` +
          `and would ignore ${ignored.join(', ')}. To train with other settings from its weights, start a new run: --init-from ${out} --out <new folder>`,
      );
    }
  } else if (f.initFrom !== undefined) {
    // Rank 0 alone reads it (the other ranks get its weights), so only there must it exist.
    const readsFiles = !isWorker() || process.env.RANK === undefined || process.env.RANK === '0';
    if (readsFiles && !fs.existsSync(f.initFrom as string)) throw new ArgError(`--init-from ${String(f.initFrom)}: no such run folder or checkpoint`);
  }
  const o: Record<string, unknown> = { out };
  for (const [key, spec] of Object.entries(RUN_OPTIONS) as [RunOptionKey, OptionSpec][]) {
    if (!spec.flag || key === 'out') continue;
    const attr = attribute(spec.flag);
    // A resumed run keeps its saved settings (its device too, unless --device is given): it is
    // given none of commander's defaults. Unset values stay undefined: train() takes the preset's.
    if (f.resume && !isGiven(attr)) continue;
    if (f[attr] !== undefined) o[key] = f[attr];
  }
  o.quiet = f.quiet === true;
  const opts = o as unknown as TrainOptions; // every key was taken from its row of RUN_OPTIONS, checked by its parser
  checkOptions(opts); // the combinations, before any worker is launched
  return opts;
}

/** How `spn train` runs with these flags: alone, as a worker of a job, or launching workers (train/launch.ts). */
export function trainLaunch(f: Flags): LaunchPlan {
  const flags: LaunchFlags = {};
  for (const key of Object.keys(LAUNCH_OPTIONS) as (keyof typeof LAUNCH_OPTIONS)[]) {
    const v = f[key];
    if (v !== undefined) (flags as Record<string, unknown>)[key] = v;
  }
  return planLaunch(flags);
}

export function register(program: Command): void {
  const cmd = program
    .command('train')
    .description('train an SPN by maximum likelihood; writes config, metrics and checkpoints to --out');
  for (const spec of [...Object.values(RUN_OPTIONS), ...Object.values(LAUNCH_OPTIONS)] as OptionSpec[]) {
    if (!spec.flag) continue; // an option of the API alone
    const flags = spec.arg ? `${spec.flag} ${spec.arg}` : spec.flag;
    const help = spec.flag === '--resume' ? resumeHelp() : (spec.help ?? '');
    const parse = parser(spec.flag, spec.value);
    if (parse && spec.cliDefault !== undefined) cmd.option(flags, help, parse, spec.cliDefault);
    else if (parse) cmd.option(flags, help, parse);
    else if (spec.cliDefault !== undefined) cmd.option(flags, help, String(spec.cliDefault));
    else cmd.option(flags, help);
  }
  cmd.action(async (flags: Flags, c: Command) => {
    const o = trainOptions(flags, c);
    const plan = trainLaunch(flags);
    const { run } = await import('./train.run.js');
    await run(o, plan);
  });
}
