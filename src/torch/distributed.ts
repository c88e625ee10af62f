// Data-parallel training on c10d, libtorch's distributed engine (native/dist.cc): a TCPStore for
// the rendezvous (rank 0 hosts it on MASTER_PORT, every other rank connects to
// MASTER_ADDR:MASTER_PORT), a Gloo process group on CPU or an NCCL one on CUDA, and the
// collectives a synchronous trainer needs. Launch one process per rank with the torchrun
// variables (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT):
//
//   const pg = distributed.initProcessGroup({ ...distributed.envRendezvous(), backend: 'gloo', timeoutS: 60 });
//   pg.checkSame('config', configHash);           // every rank trains the same thing
//   pg.broadcast(model.parameters(), 0);           // every rank starts from rank 0's weights
//   ... loss.backward(); pg.allReduceCoalesced(grads, { average: true }); optimizer.step() ...
//   pg.destroy();
//
// Every rank must issue the same collectives, with tensors of the same sizes and dtypes, in the
// same order. Each collective first compares what the ranks are about to do (a small exchange of
// its kind, tensor count, sizes and dtypes); a mismatch throws on every rank, naming the ranks,
// before anything else is sent. Calls block until done. Failures throw SpnError('E_DIST') naming
// the call, the rank and c10d's reason, within the group's timeout: a peer that died (its sockets
// close, so within milliseconds), a peer that hangs (after timeoutS), a rank that never joins, a
// port in use (at once), a master that cannot be reached (libtorch 2.x's TCPStore retries once
// more while its deadline has not passed: up to about twice timeoutS there). Each collective
// costs one extra small exchange (the comparison above). After a collective failed the group is broken:
// the ranks are out of step, and later collectives throw at once. Start over in a new process.
import { ArgError, SpnError } from '../errors.js';
import { native, type Handle } from './binding.js';
import { isFloating } from './dtype.js';
import { fromArray } from './ops.js';
import { Tensor, tidy, type Device } from './tensor.js';

export type Backend = 'gloo' | 'nccl';
export type ReduceOp = 'sum' | 'max' | 'min';

/** Where this process sits in the job and how to reach rank 0 (what torchrun puts in the environment). */
export interface Rendezvous {
  rank: number;
  worldSize: number;
  /** This process's index on its machine (selects its GPU). */
  localRank: number;
  /** Processes on this machine. */
  localWorldSize: number;
  /** Host of rank 0, which serves the TCPStore. */
  masterAddr: string;
  /** Port of the TCPStore on rank 0 (must be free there). */
  masterPort: number;
}

export interface InitOptions {
  /** 'gloo' (CPU tensors; the default) or 'nccl' (CUDA tensors; builds with CUDA only). */
  backend?: Backend;
  rank: number;
  worldSize: number;
  masterAddr: string;
  masterPort: number;
  /** Upper bound on every wait: joining, each collective, each store read. Default 300 s. */
  timeoutS?: number;
  /** nccl: the GPU of this rank; default `cuda:${localRank}`. gloo: 'cpu' (the only choice). */
  device?: Device;
  /** nccl: picks the default device. */
  localRank?: number;
}

/**
 * Default bucket sizes. NCCL: 25 MB, the default of PyTorch's DistributedDataParallel. Gloo: 4 MB;
 * measured here (two ranks on one 2-core machine, 20 MB of float32 gradients in 61 tensors, a
 * noisy shared machine): 43-51 ms a step with 4 MB buckets, 50-51 with 8 MB, 60-64 with 2 MB,
 * 72-78 with 25 MB (one buffer: nothing overlaps its copies and its exchange).
 */
export const DEFAULT_BUCKET_BYTES: Readonly<Record<Backend, number>> = { gloo: 4 * 1024 * 1024, nccl: 25 * 1024 * 1024 };
const DEFAULT_TIMEOUT_S = 300;

// --- the addon's dist* functions (native/dist.cc) -----------------------------------------------

type GroupHandle = { readonly __group: unique symbol };

interface DistNative {
  distInit(o: { backend: Backend; rank: number; worldSize: number; masterAddr: string; masterPort: number; timeoutMs: number; device: string }): GroupHandle;
  distAllReduce(g: GroupHandle, tensors: Handle[], op: ReduceOp, bucketBytes: number, scale: number | null): void;
  distBroadcast(g: GroupHandle, tensors: Handle[], root: number, bucketBytes: number): void;
  distBarrier(g: GroupHandle): void;
  distStoreSet(g: GroupHandle, key: string, value: string): void;
  distStoreGet(g: GroupHandle, key: string): string;
  distDestroy(g: GroupHandle): void;
  distState(g: GroupHandle): { broken: string | null };
  distBackends(): Backend[];
  distBackendNote(): string;
}

function dist(): DistNative {
  const d = native as unknown as Partial<DistNative>;
  if (typeof d.distInit !== 'function') {
    throw new SpnError('E_BINDING', 'the native addon was built without native/dist.cc (c10d): rebuild it with `npm run build:native`');
  }
  return d as DistNative;
}

/** Runs a native call; its errors become SpnError('E_DIST') with c10d's message. */
function distCall<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof SpnError) throw err;
    throw new SpnError('E_DIST', (err as Error).message, { cause: err });
  }
}

/** The backends this build of the addon can create: 'gloo' where Gloo's headers were there at build time, 'nccl' where libtorch has CUDA. */
export function availableBackends(): Backend[] {
  return dist().distBackends();
}

// --- the environment ----------------------------------------------------------------------------

const TORCHRUN_VARS = ['RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'LOCAL_WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'] as const;

/** Whether this process was launched as one rank of a job (torchrun or the like set RANK or WORLD_SIZE). */
export function launchedDistributed(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.RANK !== undefined || env.WORLD_SIZE !== undefined;
}

/**
 * Reads the torchrun variables. RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT are required;
 * LOCAL_RANK and LOCAL_WORLD_SIZE default to RANK and WORLD_SIZE (every rank on one machine).
 * Throws ArgError naming the variable, its value and what was expected.
 */
export function envRendezvous(env: NodeJS.ProcessEnv = process.env): Rendezvous {
  const hint = `(a distributed run needs ${TORCHRUN_VARS.join(', ')}, as torchrun sets them)`;
  const int = (name: string, min: number, fallback?: number): number => {
    const raw = env[name];
    if (raw === undefined || raw === '') {
      if (fallback !== undefined) return fallback;
      throw new ArgError(`${name} is not set ${hint}`);
    }
    if (!/^\s*\d+\s*$/.test(raw)) throw new ArgError(`${name}='${raw}': expected a whole number >= ${min} ${hint}`);
    const v = Number(raw);
    if (!Number.isSafeInteger(v) || v < min) throw new ArgError(`${name}='${raw}': expected a whole number >= ${min}`);
    return v;
  };
  const worldSize = int('WORLD_SIZE', 1);
  const rank = int('RANK', 0);
  if (rank >= worldSize) throw new ArgError(`RANK=${rank} is not below WORLD_SIZE=${worldSize}: ranks are 0 to ${worldSize - 1}`);
  const localWorldSize = int('LOCAL_WORLD_SIZE', 1, worldSize);
  if (localWorldSize > worldSize) throw new ArgError(`LOCAL_WORLD_SIZE=${localWorldSize} is larger than WORLD_SIZE=${worldSize}`);
  const localRank = int('LOCAL_RANK', 0, env.LOCAL_WORLD_SIZE ? undefined : rank);
  if (localRank >= localWorldSize) throw new ArgError(`LOCAL_RANK=${localRank} is not below LOCAL_WORLD_SIZE=${localWorldSize}`);
  const masterAddr = (env.MASTER_ADDR ?? '').trim();
  if (!masterAddr) throw new ArgError(`MASTER_ADDR is not set ${hint}`);
  if (/\s/.test(masterAddr)) throw new ArgError(`MASTER_ADDR='${masterAddr}': expected a host name or address`);
  const masterPort = int('MASTER_PORT', 1);
  if (masterPort > 65535) throw new ArgError(`MASTER_PORT=${masterPort}: expected a TCP port, 1 to 65535`);
  return { rank, worldSize, localRank, localWorldSize, masterAddr, masterPort };
}

// --- the process group ----------------------------------------------------------------------------

function checkInt(what: string, v: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new ArgError(`${what}: expected a whole number from ${min} to ${max}, got ${String(v)}`);
  }
  return v;
}

/** Joins the job: connects to (rank 0: hosts) the TCPStore, waits for every rank, connects the backend. */
export function initProcessGroup(opts: InitOptions): ProcessGroup {
  if (typeof opts !== 'object' || opts === null) throw new ArgError('initProcessGroup: expected an options object');
  const backend = opts.backend ?? 'gloo';
  if (backend !== 'gloo' && backend !== 'nccl') throw new ArgError(`initProcessGroup: backend must be 'gloo' or 'nccl', got '${String(backend)}'`);
  const worldSize = checkInt('initProcessGroup: worldSize', opts.worldSize, 1);
  const rank = checkInt('initProcessGroup: rank', opts.rank, 0, worldSize - 1);
  const masterPort = checkInt('initProcessGroup: masterPort', opts.masterPort, 1, 65535);
  if (typeof opts.masterAddr !== 'string' || opts.masterAddr.trim() === '') {
    throw new ArgError(`initProcessGroup: masterAddr: expected a host name or address, got ${JSON.stringify(opts.masterAddr)}`);
  }
  const timeoutS = opts.timeoutS ?? DEFAULT_TIMEOUT_S;
  if (typeof timeoutS !== 'number' || !(timeoutS > 0) || timeoutS > 86_400) {
    throw new ArgError(`initProcessGroup: timeoutS: expected seconds above 0 and at most 86400, got ${String(timeoutS)}`);
  }
  const available = availableBackends();
  if (!available.includes(backend)) {
    const has = available.length ? `this build has only ${available.map((b) => `'${b}'`).join(' and ')}` : 'this build has no backend';
    throw new SpnError('E_DIST', `initProcessGroup: backend '${backend}' is not available: ${has} (${dist().distBackendNote()})`);
  }
  let device: Device;
  if (backend === 'gloo') {
    device = opts.device ?? 'cpu';
    if (device !== 'cpu') throw new ArgError(`initProcessGroup: the gloo backend works on 'cpu' tensors, not device '${device}'`);
  } else {
    const localRank = checkInt('initProcessGroup: localRank', opts.localRank ?? 0, 0);
    device = opts.device ?? `cuda:${localRank}`;
    if (!/^cuda:\d+$/.test(device)) throw new ArgError(`initProcessGroup: the nccl backend needs a device 'cuda:N', got '${device}'`);
    const { cuda, cudaDevices } = native.info();
    if (!cuda) throw new SpnError('E_DIST', "initProcessGroup: the nccl backend needs a CUDA GPU, and libtorch sees none here (use 'gloo' on CPU)");
    const index = Number(device.slice(5));
    if (index >= cudaDevices) throw new ArgError(`initProcessGroup: device '${device}': this machine has ${cudaDevices} CUDA device${cudaDevices === 1 ? '' : 's'} (cuda:0 to cuda:${cudaDevices - 1})`);
  }
  const masterAddr = opts.masterAddr.trim();
  const handle = distCall(() =>
    dist().distInit({ backend, rank, worldSize, masterAddr, masterPort, timeoutMs: Math.round(timeoutS * 1000), device }),
  );
  return new ProcessGroup(handle, { backend, rank, worldSize, masterAddr, masterPort, timeoutS, device });
}

export interface CoalescedOptions {
  /**
   * Tensors are packed into flat buffers of about this many bytes (per dtype), one collective
   * each; a tensor of this size or more goes alone, in place. Default DEFAULT_BUCKET_BYTES[backend].
   */
  bucketBytes?: number;
  /** Default 'sum'. */
  op?: ReduceOp;
  /** Divide the sum by the world size (floating tensors only): the mean gradient. */
  average?: boolean;
}

const CHECK_PREFIX = 'checkSame/'; // checkSame's keys in the store

function checkKey(what: string, key: unknown): void {
  if (typeof key !== 'string' || key === '') throw new ArgError(`${what}: key: expected a non-empty string, got ${JSON.stringify(key)}`);
  if (key.startsWith(CHECK_PREFIX)) throw new ArgError(`${what}: key '${key}': keys starting with '${CHECK_PREFIX}' belong to checkSame`);
}

export class ProcessGroup {
  readonly backend: Backend;
  readonly rank: number;
  readonly worldSize: number;
  readonly masterAddr: string;
  readonly masterPort: number;
  readonly timeoutS: number;
  /** Where this group's tensors live: 'cpu' for gloo, 'cuda:N' for nccl. */
  readonly device: Device;
  #h: GroupHandle | null;
  #checks = 0;

  /** @internal Use initProcessGroup. */
  constructor(handle: GroupHandle, info: { backend: Backend; rank: number; worldSize: number; masterAddr: string; masterPort: number; timeoutS: number; device: Device }) {
    this.#h = handle;
    this.backend = info.backend;
    this.rank = info.rank;
    this.worldSize = info.worldSize;
    this.masterAddr = info.masterAddr;
    this.masterPort = info.masterPort;
    this.timeoutS = info.timeoutS;
    this.device = info.device;
  }

  get #handle(): GroupHandle {
    if (this.#h === null) throw new SpnError('E_DIST', `the process group (rank ${this.rank} of ${this.worldSize}) was destroyed`);
    return this.#h;
  }

  /** The first collective failure that broke the group, or null while it is usable. */
  get broken(): string | null {
    return this.#h === null ? null : dist().distState(this.#h).broken;
  }

  get isDestroyed(): boolean {
    return this.#h === null;
  }

  #tensors(what: string, tensors: Tensor | Tensor[]): Handle[] {
    const list = tensors instanceof Tensor ? [tensors] : tensors;
    if (!Array.isArray(list)) throw new ArgError(`${what}: expected a tensor or an array of tensors`);
    const seen = new Map<Tensor, number>();
    return list.map((t, i) => {
      if (!(t instanceof Tensor)) throw new ArgError(`${what}: tensors[${i}] is not a Tensor`);
      const before = seen.get(t);
      if (before !== undefined) throw new ArgError(`${what}: tensors[${i}] is the same tensor as tensors[${before}]`);
      seen.set(t, i);
      const device = t.device;
      const ok = this.backend === 'gloo' ? device === 'cpu' : device.startsWith('cuda');
      if (!ok) throw new ArgError(`${what}: tensors[${i}] is on '${device}'; the ${this.backend} backend takes ${this.backend === 'gloo' ? "'cpu'" : 'CUDA'} tensors`);
      return t.handle;
    });
  }

  #op(what: string, op: unknown): ReduceOp {
    if (op !== 'sum' && op !== 'max' && op !== 'min') throw new ArgError(`${what}: op must be 'sum', 'max' or 'min', got '${String(op)}'`);
    return op;
  }

  /** Reduces every tensor across the ranks, in place, one collective per tensor. */
  allReduce(tensors: Tensor | Tensor[], op: ReduceOp = 'sum'): void {
    const handles = this.#tensors('allReduce', tensors);
    const o = this.#op('allReduce', op);
    const h = this.#handle;
    distCall(() => dist().distAllReduce(h, handles, o, 0, null));
  }

  /**
   * Reduces many tensors in place, packed into flat buffers of about bucketBytes (per dtype), one
   * collective per buffer, all in flight together: the gradient path (not one call per
   * parameter). With `average`, the sums are divided by the world size.
   */
  allReduceCoalesced(tensors: Tensor[], opts: CoalescedOptions = {}): void {
    const handles = this.#tensors('allReduceCoalesced', tensors);
    const o = this.#op('allReduceCoalesced', opts.op ?? 'sum');
    const bucketBytes = checkInt('allReduceCoalesced: bucketBytes', opts.bucketBytes ?? DEFAULT_BUCKET_BYTES[this.backend], 1);
    let scale: number | null = null;
    if (opts.average) {
      if (o !== 'sum') throw new ArgError(`allReduceCoalesced: average needs op 'sum', got '${o}'`);
      const bad = tensors.findIndex((t) => !isFloating(t.dtype));
      if (bad >= 0) throw new ArgError(`allReduceCoalesced: average needs floating tensors; tensors[${bad}] is ${tensors[bad]!.dtype}`);
      scale = 1 / this.worldSize;
    }
    const h = this.#handle;
    distCall(() => dist().distAllReduce(h, handles, o, bucketBytes, scale));
  }

  /** Copies rank `root`'s tensors into every rank's, in place (packed into buckets as above). */
  broadcast(tensors: Tensor | Tensor[], root = 0, opts: { bucketBytes?: number } = {}): void {
    const handles = this.#tensors('broadcast', tensors);
    checkInt('broadcast: root', root, 0, this.worldSize - 1);
    const bucketBytes = checkInt('broadcast: bucketBytes', opts.bucketBytes ?? DEFAULT_BUCKET_BYTES[this.backend], 1);
    const h = this.#handle;
    distCall(() => dist().distBroadcast(h, handles, root, bucketBytes));
  }

  /** Reduces plain numbers (in float64), e.g. loss sums and counts for a log line. */
  allReduceNumbers(values: number[], op: ReduceOp = 'sum'): number[] {
    if (!Array.isArray(values) || values.some((v) => typeof v !== 'number')) throw new ArgError('allReduceNumbers: expected an array of numbers');
    const o = this.#op('allReduceNumbers', op);
    const t = fromArray(Float64Array.from(values), [values.length], { device: this.device });
    try {
      const h = this.#handle;
      distCall(() => dist().distAllReduce(h, [t.handle], o, 0, null));
      return Array.from(t.data() as Float64Array);
    } finally {
      t.dispose();
    }
  }

  /**
   * Every rank's string, in rank order: an all-gather made of two all-reduces (the lengths, then
   * the bytes, each rank's at its offset with zeros elsewhere, so the sums are exact). Built on
   * collectives rather than the store, so that a rank that died is noticed at once (its
   * connections close), not after the timeout.
   */
  allGatherStrings(value: string): string[] {
    if (typeof value !== 'string') throw new ArgError('allGatherStrings: expected a string');
    const mine = Buffer.from(value, 'utf8');
    const lengths = this.allReduceNumbers(Array.from({ length: this.worldSize }, (_, r) => (r === this.rank ? mine.length : 0)));
    const offsets = lengths.map((_, r) => lengths.slice(0, r).reduce((a, b) => a + b, 0));
    const total = lengths.reduce((a, b) => a + b, 0);
    if (total === 0) return lengths.map(() => '');
    const bytes = tidy(() => {
      const all = new Uint8Array(total);
      all.set(mine, offsets[this.rank]);
      const t = fromArray(all, [total], { dtype: 'uint8', device: this.device });
      this.allReduce(t);
      return t.data() as Uint8Array;
    });
    return lengths.map((n, r) => Buffer.from(bytes.buffer, bytes.byteOffset + offsets[r]!, n).toString('utf8'));
  }

  /** Returns once every rank has called barrier(). */
  barrier(): void {
    const h = this.#handle;
    distCall(() => dist().distBarrier(h));
  }

  /** Sets a string in the job's key-value store (the TCPStore on rank 0), visible to every rank. */
  storeSet(key: string, value: string): void {
    checkKey('storeSet', key);
    if (typeof value !== 'string') throw new ArgError(`storeSet('${key}'): value: expected a string`);
    const h = this.#handle;
    distCall(() => dist().distStoreSet(h, key, value));
  }

  /** Reads a key, waiting up to timeoutS for some rank to set it. */
  storeGet(key: string): string {
    checkKey('storeGet', key);
    const h = this.#handle;
    return distCall(() => dist().distStoreGet(h, key));
  }

  /**
   * Every rank passes its own value (e.g. a hash of its config); returns when all are equal.
   * Otherwise every rank throws SpnError('E_DIST') listing which ranks hold which value. All ranks
   * must call checkSame with the same keys in the same order.
   */
  checkSame(key: string, value: string): void {
    if (typeof key !== 'string' || key === '' || key.includes('/')) throw new ArgError(`checkSame: key: expected a non-empty string without '/', got ${JSON.stringify(key)}`);
    if (typeof value !== 'string') throw new ArgError(`checkSame('${key}'): value: expected a string`);
    const h = this.#handle;
    const prefix = `${CHECK_PREFIX}${this.#checks++}/${key}`;
    distCall(() => dist().distStoreSet(h, `${prefix}/${this.rank}`, value));
    const values: string[] = [];
    for (let r = 0; r < this.worldSize; r++) {
      if (r === this.rank) {
        values.push(value);
        continue;
      }
      try {
        values.push(dist().distStoreGet(h, `${prefix}/${r}`));
      } catch (err) {
        throw new SpnError('E_DIST', `checkSame('${key}') on rank ${this.rank}: rank ${r} did not report its value within ${this.timeoutS}s (did it fail, or call checkSame with another key?): ${(err as Error).message}`, { cause: err });
      }
    }
    const byValue = new Map<string, number[]>();
    values.forEach((v, r) => byValue.set(v, [...(byValue.get(v) ?? []), r]));
    if (byValue.size === 1) return;
    const show = (v: string): string => JSON.stringify(v.length > 80 ? `${v.slice(0, 77)}...` : v);
    const groups = [...byValue.entries()].map(([v, ranks]) => `rank${ranks.length > 1 ? 's' : ''} ${ranks.join(', ')}: ${show(v)}`);
    throw new SpnError('E_DIST', `checkSame('${key}'): the ranks differ (${groups.join('; ')})`);
  }

  /**
   * Leaves the job: closes the connections (rank 0: stops serving the TCPStore, so call barrier()
   * first if other ranks may still need it). Idempotent.
   */
  destroy(): void {
    if (this.#h === null) return;
    const h = this.#h;
    this.#h = null;
    distCall(() => dist().distDestroy(h));
  }
}
