// Data-parallel training on c10d, libtorch's distributed engine (native/dist.cc): a TCPStore for
// the rendezvous (rank 0 hosts it on MASTER_PORT, every other rank connects to
// MASTER_ADDR:MASTER_PORT), a Gloo process group on CPU or an NCCL one on CUDA, and the
// collectives a synchronous trainer needs. Launch one process per rank with the torchrun
// variables (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT):
//
//   const pg = distributed.initProcessGroup({ ...distributed.envRendezvous(), backend: 'gloo', timeoutS: 60 });
//   pg.broadcast(model.parameters(), 0);           // every rank starts from rank 0's weights
//   const red = pg.reducer(model.parameters());    // c10d's Reducer, DDP's gradient engine
//   ... loss = forward(...); red.backward(loss); optimizer.step() ...   // p.grad: the mean over the ranks
//   red.dispose(); pg.destroy();
//
// (or, without the reducer, loss.backward(); pg.allReduceCoalesced(grads, { average: true }):
// the same averages up to rounding, with the communication after backward instead of during it.
// The Reducer divides each gradient by the world size before the sum, as DDP does;
// allReduceCoalesced sums, then divides. On 2 ranks the two agree bit for bit (barring underflow).)
//
// Every rank must issue the same collectives, with tensors of the same sizes and dtypes, in the
// same order. Each collective first compares what the ranks are about to do (a small exchange of
// its kind, tensor count, sizes and dtypes); a mismatch throws on every rank, naming the ranks,
// before anything else is sent. Calls block until done. Failures throw SpnError('E_DIST') naming
// the call, the rank and c10d's reason, within the group's timeout: a peer that died (its sockets
// close, so within milliseconds), a peer that hangs (after timeoutS), a rank that never joins, a
// port in use (at once), a master that cannot be reached (libtorch 2.x's TCPStore retries once
// more while its deadline has not passed: up to about twice timeoutS there). Each collective
// costs one extra small exchange (the comparison above); a reducer compares its parameter lists
// once, at construction, and its bucket all-reduces go without it. After a collective failed the
// group is broken: the ranks are out of step, and later collectives throw at once. Start over in a
// new process.
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
  distDestroy(g: GroupHandle): void;
  distState(g: GroupHandle): { broken: string | null };
  distBackends(): Backend[];
  distBackendNote(): string;
  reducerCreate(g: GroupHandle, params: Handle[], o: NativeReducerOptions): ReducerHandle;
  reducerPrepare(r: ReducerHandle, outputs: Handle[]): void;
  reducerFinish(r: ReducerHandle, backwardError: string | null): string | null;
  reducerBuckets(r: ReducerHandle): number[][];
  reducerStats(r: ReducerHandle): { iterations: number; sampled: number; computeMs: number | null; commMs: number | null; overlapMs: number | null };
  reducerDispose(r: ReducerHandle): void;
}

type ReducerHandle = { readonly __reducer: unique symbol };

interface NativeReducerOptions {
  bucketCapBytes: number;
  firstBucketCapBytes: number;
  findUnusedParameters: boolean;
  rebuildBuckets: boolean;
  statsSampleRate: number;
  names: string[];
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

  /**
   * c10d's Reducer (the engine of PyTorch's DistributedDataParallel) over these parameters: from
   * then on, each backward that follows prepareForBackward() (or a Reducer.backward(loss))
   * averages every parameter's gradient over the ranks, launching each bucket's all-reduce as
   * soon as its gradients are ready, during backward. Every rank must pass the same list (the
   * ranks compare counts, sizes and dtypes first, and throw on every rank when they differ).
   */
  reducer(params: Tensor[], opts: ReducerOptions = {}): Reducer {
    const what = `reducer on rank ${this.rank} of ${this.worldSize}`;
    if (!Array.isArray(params) || params.length === 0) throw new ArgError(`${what}: expected a non-empty array of parameters`);
    const handles = this.#tensors(what, params);
    params.forEach((p, i) => {
      if (!p.requiresGrad || !p.isLeaf) throw new ArgError(`${what}: params[${i}] must be a leaf tensor that requires grad (a parameter)`);
      if (!isFloating(p.dtype)) throw new ArgError(`${what}: params[${i}] is ${p.dtype}; gradients are averaged in floating point`);
    });
    const bucketCapBytes = checkInt(`${what}: bucketCapBytes`, opts.bucketCapBytes ?? DDP_BUCKET_CAP_BYTES, 1);
    const firstBucketCapBytes = checkInt(`${what}: firstBucketCapBytes`, opts.firstBucketCapBytes ?? DDP_FIRST_BUCKET_CAP_BYTES, 1);
    const statsSampleRate = checkInt(`${what}: statsSampleRate`, opts.statsSampleRate ?? (this.backend === 'nccl' ? 100 : 1), 1, 2 ** 31 - 1);
    const names = opts.names ?? params.map((_, i) => `params[${i}]`);
    if (!Array.isArray(names) || names.length !== params.length || names.some((n) => typeof n !== 'string')) {
      throw new ArgError(`${what}: names: expected ${params.length} strings, one per parameter`);
    }
    const findUnusedParameters = opts.findUnusedParameters ?? false;
    const rebuildBuckets = opts.rebuildBuckets ?? true;
    const h = this.#handle;
    const r = distCall(() => dist().reducerCreate(h, handles, { bucketCapBytes, firstBucketCapBytes, findUnusedParameters, rebuildBuckets, statsSampleRate, names }));
    return new Reducer(r, this, params, findUnusedParameters);
  }

  /**
   * Leaves the job: closes the connections (rank 0: stops serving the TCPStore, which the other
   * ranks no longer need once their groups are made) and disposes of the group's reducers.
   * Idempotent.
   */
  destroy(): void {
    if (this.#h === null) return;
    const h = this.#h;
    this.#h = null;
    distCall(() => dist().distDestroy(h));
  }
}

// --- the reducer ------------------------------------------------------------------------------------

/** PyTorch DDP's defaults (bucket_cap_mb = 25 and dist._DEFAULT_FIRST_BUCKET_BYTES). */
export const DDP_BUCKET_CAP_BYTES = 25 * 1024 * 1024;
export const DDP_FIRST_BUCKET_CAP_BYTES = 1024 * 1024;

export interface ReducerOptions {
  /**
   * Buckets are closed once they reach this many bytes (DDP's bucket_cap_mb; default 25 MiB). As
   * in DDP (compute_bucket_assignment_by_size), a bucket holds one dtype and is filled in parameter
   * order until its size reaches the cap, so it can exceed it by its last tensor.
   */
  bucketCapBytes?: number;
  /** The same for the first bucket (the first parameters, whose gradients come last); default 1 MiB. */
  firstBucketCapBytes?: number;
  /**
   * DDP's find_unused_parameters: before each backward the Reducer walks the graph from the
   * outputs passed to prepareForBackward and marks parameters it does not reach as ready, so a
   * model may leave some unused. Default false: every parameter must get a gradient in every
   * backward, on every rank (otherwise that backward throws, naming them).
   */
  findUnusedParameters?: boolean;
  /**
   * Rebuild the buckets once, before the second backward, in the order the gradients became
   * ready in the first (rank 0's order, broadcast), as DDP does. Default true; false keeps the
   * layout made at construction.
   */
  rebuildBuckets?: boolean;
  /**
   * Collect the Reducer's timings on the first 10 iterations and then every this many (DDP's
   * _set_ddp_runtime_logging_sample_rate). Default 1 on gloo (the CPU timer costs nothing), 100
   * on nccl (each reading synchronises CUDA events), as DDP.
   */
  statsSampleRate?: number;
  /** Names of the parameters, for error messages; default `params[i]`. */
  names?: string[];
}

/** The Reducer's own timings (DDP's logging data), averaged over the sampled iterations; null until one was sampled. */
export interface ReducerStats {
  /** Backwards whose gradients were reduced. */
  iterations: number;
  /** Of those, how many were timed. */
  sampled: number;
  /** From prepareForBackward to the end of the backward's computation (avg_backward_compute_time). */
  backwardComputeMs: number | null;
  /** From the first bucket's all-reduce to the last one's end (avg_backward_comm_time). */
  backwardCommMs: number | null;
  /** Communication during the computation (avg_backward_compute_comm_overlap_time). */
  overlapMs: number | null;
  /** Communication after the computation ended: what backward waited for (backwardCommMs - overlapMs). */
  exposedCommMs: number | null;
}

/**
 * Gradients averaged over the ranks by c10d's Reducer during backward (see ProcessGroup.reducer).
 * A backward run without prepareForBackward() first is not reduced: its gradients accumulate
 * locally, as under DDP's no_sync().
 *
 * Failures: a peer that died or hung, a parameter without a gradient (findUnusedParameters off),
 * the ranks out of step. backward() throws SpnError('E_DIST') naming the rank, what failed and
 * c10d's reason; a plain loss.backward() after prepareForBackward() throws the same message as a
 * plain Error (the addon's backward does not know about reducers), and the next
 * prepareForBackward() throws SpnError('E_DIST'). Either way the reducer and its group are broken
 * afterwards: later calls and collectives throw at once.
 */
export class Reducer {
  readonly group: ProcessGroup;
  /** The parameters, in the order given (the indices of buckets()). */
  readonly params: readonly Tensor[];
  readonly findUnusedParameters: boolean;
  #h: ReducerHandle | null;

  /** @internal Use ProcessGroup.reducer. */
  constructor(handle: ReducerHandle, group: ProcessGroup, params: Tensor[], findUnusedParameters: boolean) {
    this.#h = handle;
    this.group = group;
    this.params = Object.freeze([...params]);
    this.findUnusedParameters = findUnusedParameters;
  }

  #handle(what: string): ReducerHandle {
    const where = `${what} on rank ${this.group.rank} of ${this.group.worldSize} (reducer)`;
    if (this.#h === null) throw new SpnError('E_DIST', `${where}: the reducer was disposed`);
    if (this.group.isDestroyed) throw new SpnError('E_DIST', `${where}: the process group was destroyed (and the reducer with it)`);
    return this.#h;
  }

  get isDisposed(): boolean {
    return this.#h === null;
  }

  /**
   * Call before each backward whose gradients are to be averaged (DDP calls it at the end of
   * forward). With findUnusedParameters, pass the outputs the loss is computed from (or the loss).
   * Preparing again without a backward in between (a skipped step) is fine. It is a collective,
   * as the backward is: the ranks first compare notes (one small exchange, which turns ranks out
   * of step into an error on every rank), and the first call after the first reduced backward
   * rebuilds the buckets (a broadcast from rank 0).
   */
  prepareForBackward(outputs?: Tensor | Tensor[]): void {
    const list = outputs === undefined ? [] : outputs instanceof Tensor ? [outputs] : outputs;
    if (!Array.isArray(list) || list.some((t) => !(t instanceof Tensor))) throw new ArgError('prepareForBackward: outputs: expected a tensor or an array of tensors');
    if (this.findUnusedParameters && list.length === 0) {
      throw new ArgError('prepareForBackward: with findUnusedParameters the reducer needs the outputs (or the loss) to find the unused parameters from');
    }
    const h = this.#handle('prepareForBackward');
    distCall(() => dist().reducerPrepare(h, list.map((t) => t.handle)));
  }

  /**
   * prepareForBackward (unless `prepared`: the caller made it, e.g. at the end of its forward, as
   * DDP does), loss.backward() and a check that every bucket was reduced: on return every
   * parameter's .grad is the mean over the ranks (the same bits on every rank).
   */
  backward(loss: Tensor, opts: { retainGraph?: boolean; prepared?: boolean } = {}): void {
    if (!(loss instanceof Tensor)) throw new ArgError('backward: expected the loss tensor');
    if (!opts.prepared) this.prepareForBackward(this.findUnusedParameters ? loss : undefined);
    const h = this.#handle('backward');
    let failure: unknown = null;
    try {
      loss.backward(undefined, { retainGraph: opts.retainGraph });
    } catch (err) {
      failure = err;
    }
    const message = dist().reducerFinish(h, failure === null ? null : failure instanceof Error ? failure.message : String(failure));
    if (message !== null) throw new SpnError('E_DIST', message, failure === null ? undefined : { cause: failure });
  }

  /** The parameter indices of each bucket, in the order the buckets are all-reduced. */
  buckets(): number[][] {
    const h = this.#handle('buckets');
    return distCall(() => dist().reducerBuckets(h));
  }

  stats(): ReducerStats {
    const h = this.#handle('stats');
    const s = distCall(() => dist().reducerStats(h));
    return {
      iterations: s.iterations,
      sampled: s.sampled,
      backwardComputeMs: s.computeMs,
      backwardCommMs: s.commMs,
      overlapMs: s.overlapMs,
      exposedCommMs: s.commMs === null || s.overlapMs === null ? null : Math.max(0, s.commMs - s.overlapMs),
    };
  }

  /** Removes the Reducer's hooks from the parameters. Idempotent. */
  dispose(): void {
    if (this.#h === null) return;
    const h = this.#h;
    this.#h = null;
    distCall(() => dist().reducerDispose(h));
  }
}
