// AdamW (Loshchilov & Hutter): Adam with weight decay decoupled from the gradient, computed
// exactly as torch.optim.AdamW (foreach=False, amsgrad=False) with in-place ATen ops.
import { ArgError } from '../../errors.js';
import { inplace, zerosLike, call, fromArray } from '../ops.js';
import { Tensor, keep, noGrad, tidy } from '../tensor.js';

/** A parameter with the name it has in the model's state dict. */
export interface NamedParam { name: string; param: Tensor }

export interface AdamWOptions {
  lr: number;
  /** Decay rates of the first and second moment estimates. */
  betas?: [number, number];
  /** Added to the denominator for numerical stability. */
  eps?: number;
  /** Decoupled weight decay: each step multiplies the parameter by (1 - lr * weightDecay). */
  weightDecay?: number;
  /** Parameters for which this returns true get no weight decay (e.g. `(_, p) => p.ndim < 2`: biases and norm gains). */
  noDecay?: (name: string, param: Tensor) => boolean;
}

interface ParamState { expAvg: Tensor; expAvgSq: Tensor; step: number }

const KNOWN_OPTIONS = new Set(['lr', 'betas', 'eps', 'weightDecay', 'noDecay']);

export function namedParams(params: Tensor[] | NamedParam[]): NamedParam[] {
  return params.map((p, i) => (p instanceof Tensor ? { name: String(i), param: p } : p));
}

export class AdamW {
  readonly params: readonly NamedParam[];
  lr: number;
  readonly betas: [number, number];
  readonly eps: number;
  readonly weightDecay: number;
  readonly #decays: boolean[];
  readonly #state = new Map<string, ParamState>();
  #stepCount = 0;

  constructor(params: Tensor[] | NamedParam[], opts: AdamWOptions) {
    for (const k of Object.keys(opts)) {
      if (!KNOWN_OPTIONS.has(k)) throw new ArgError(`AdamW: unknown option '${k}'; expected one of ${[...KNOWN_OPTIONS].join(', ')}`);
    }
    this.params = namedParams(params);
    const names = new Set<string>();
    for (const { name, param } of this.params) {
      if (names.has(name)) throw new ArgError(`AdamW: parameter name '${name}' appears twice`);
      names.add(name);
      if (!param.requiresGrad) throw new ArgError(`AdamW: parameter '${name}' does not require grad`);
    }
    this.lr = opts.lr;
    this.betas = opts.betas ?? [0.9, 0.999];
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 0.01;
    checkRange('lr', this.lr, 0, Infinity);
    checkRange('betas[0]', this.betas[0], 0, 1);
    checkRange('betas[1]', this.betas[1], 0, 1);
    checkRange('eps', this.eps, 0, Infinity);
    checkRange('weightDecay', this.weightDecay, 0, Infinity);
    const noDecay = opts.noDecay ?? (() => false);
    this.#decays = this.params.map(({ name, param }) => !noDecay(name, param));
  }

  /** Number of step() calls (restored by loadStateDict as the largest per-parameter step). */
  get stepCount(): number {
    return this.#stepCount;
  }

  /** One update of every parameter that has a gradient; parameters whose grad is null are skipped. */
  step(): void {
    const [beta1, beta2] = this.betas;
    const lr = this.lr;
    noGrad(() =>
      tidy(() => {
        this.params.forEach(({ name, param }, i) => {
          const grad = param.grad;
          if (grad === null) return;
          let st = this.#state.get(name);
          if (!st) {
            st = { expAvg: keep(zerosLike(param)), expAvgSq: keep(zerosLike(param)), step: 0 };
            this.#state.set(name, st);
          }
          st.step++;
          if (this.#decays[i] && this.weightDecay !== 0) inplace('aten::mul_.Scalar', [param, 1 - lr * this.weightDecay]);
          inplace('aten::lerp_.Scalar', [st.expAvg, grad, 1 - beta1]);
          inplace('aten::mul_.Scalar', [st.expAvgSq, beta2]);
          inplace('aten::addcmul_', [st.expAvgSq, grad, grad, 1 - beta2]);
          const bc1 = 1 - beta1 ** st.step;
          const bc2 = 1 - beta2 ** st.step;
          const denom = call('aten::sqrt', [st.expAvgSq]) as Tensor;
          inplace('aten::div_.Scalar', [denom, Math.sqrt(bc2)]);
          inplace('aten::add_.Scalar', [denom, this.eps, 1]);
          inplace('aten::addcdiv_', [param, st.expAvg, denom, -lr / bc1]);
        });
      }),
    );
    this.#stepCount++;
  }

  /** Sets every parameter's grad to null (frees the gradient memory, as set_to_none=True). */
  zeroGrad(): void {
    for (const { param } of this.params) param.grad = null;
  }

  /**
   * The moment estimates and step counts, keyed `<name>.exp_avg`, `<name>.exp_avg_sq` and
   * `<name>.step` (an int64 scalar). The tensors are new handles on the optimizer's storage
   * (no copy): dispose them (or call this inside tidy) when written out.
   */
  stateDict(): Record<string, Tensor> {
    const out: Record<string, Tensor> = {};
    for (const { name } of this.params) {
      const st = this.#state.get(name);
      if (!st) continue;
      out[`${name}.exp_avg`] = st.expAvg.detach();
      out[`${name}.exp_avg_sq`] = st.expAvgSq.detach();
      out[`${name}.step`] = fromArray(new BigInt64Array([BigInt(st.step)]), []);
    }
    return out;
  }

  /** Restores what stateDict() returned (copied into new tensors on each parameter's device and dtype). */
  loadStateDict(sd: Record<string, Tensor>): void {
    const byName = new Map(this.params.map((p) => [p.name, p.param]));
    const next = new Map<string, { expAvg?: Tensor; expAvgSq?: Tensor; step?: number }>();
    for (const [key, t] of Object.entries(sd)) {
      const m = /^(.*)\.(exp_avg|exp_avg_sq|step)$/.exec(key);
      const param = m ? byName.get(m[1]!) : undefined;
      if (!m || !param) throw new ArgError(`AdamW.loadStateDict: unexpected key '${key}'; expected <param>.exp_avg, <param>.exp_avg_sq or <param>.step for a parameter of this optimizer`);
      const entry = next.get(m[1]!) ?? {};
      next.set(m[1]!, entry);
      if (m[2] === 'step') {
        if (t.numel !== 1) throw new ArgError(`AdamW.loadStateDict: '${key}' should hold one number, not shape [${t.shape.join(', ')}]`);
        entry.step = t.item();
      } else {
        if (t.shape.join(',') !== param.shape.join(',')) {
          throw new ArgError(`AdamW.loadStateDict: '${key}' has shape [${t.shape.join(', ')}], expected [${param.shape.join(', ')}] like its parameter`);
        }
        const copy = noGrad(() => keep(zerosLike(param)).copy_(t));
        if (m[2] === 'exp_avg') entry.expAvg = copy;
        else entry.expAvgSq = copy;
      }
    }
    for (const [name, e] of next) {
      if (!e.expAvg || !e.expAvgSq || e.step === undefined) {
        for (const t of [e.expAvg, e.expAvgSq]) t?.dispose();
        throw new ArgError(`AdamW.loadStateDict: parameter '${name}' needs all of exp_avg, exp_avg_sq and step`);
      }
    }
    this.dispose();
    let maxStep = 0;
    for (const [name, e] of next) {
      this.#state.set(name, { expAvg: e.expAvg!, expAvgSq: e.expAvgSq!, step: e.step! });
      maxStep = Math.max(maxStep, e.step!);
    }
    this.#stepCount = maxStep;
  }

  /** Frees the optimizer state (the parameters are the caller's). */
  dispose(): void {
    for (const st of this.#state.values()) {
      st.expAvg.dispose();
      st.expAvgSq.dispose();
    }
    this.#state.clear();
  }
}

function checkRange(name: string, v: number, lo: number, hi: number): void {
  if (!(typeof v === 'number' && v >= lo && (v < hi || hi === Infinity) && Number.isFinite(v))) {
    throw new ArgError(`AdamW: ${name} = ${String(v)} is out of range; expected a finite number in [${lo}, ${hi})`);
  }
}
