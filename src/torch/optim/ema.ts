// Exponential moving average of parameters (Polyak averaging), for evaluation and sampling
// with smoother weights than the last optimizer step.
import { ArgError } from '../../errors.js';
import { clone, inplace } from '../ops.js';
import { Tensor, keep, noGrad, tidy } from '../tensor.js';
import type { NamedParam } from './adamw.js';

export class EMA {
  readonly params: readonly NamedParam[];
  readonly decay: number;
  /** The averaged weights, by parameter name (owned by this object). */
  readonly shadow = new Map<string, Tensor>();
  #updates = 0;

  /** The shadow starts as a copy of the parameters; each update moves it (1 - decay) toward them. */
  constructor(params: NamedParam[], decay: number) {
    if (!(decay >= 0 && decay < 1)) throw new ArgError(`EMA: decay = ${decay}; expected a number in [0, 1)`);
    this.params = params;
    this.decay = decay;
    noGrad(() => {
      for (const { name, param } of params) {
        if (this.shadow.has(name)) throw new ArgError(`EMA: parameter name '${name}' appears twice`);
        this.shadow.set(name, keep(clone(param)));
      }
    });
  }

  get updates(): number {
    return this.#updates;
  }

  /**
   * shadow = d * shadow + (1 - d) * param, for every parameter, where d is the decay, or given
   * the training step n, min(decay, (1 + n) / (10 + n)): early on the average follows the
   * fast-moving weights instead of remembering the random initialisation.
   */
  update(o: { step?: number } = {}): void {
    const n = o.step;
    const d = n === undefined ? this.decay : Math.min(this.decay, (1 + n) / (10 + n));
    noGrad(() =>
      tidy(() => {
        for (const { name, param } of this.params) inplace('aten::lerp_.Scalar', [this.shadow.get(name)!, param, 1 - d]);
      }),
    );
    this.#updates++;
  }

  /** Overwrites the parameters with the shadow weights. */
  copyTo(): void {
    noGrad(() => {
      for (const { name, param } of this.params) param.copy_(this.shadow.get(name)!);
    });
  }

  /** Runs fn with the shadow weights in the parameters, then puts the trained weights back. */
  withShadow<T>(fn: () => T): T {
    const saved = noGrad(() => this.params.map(({ param }) => keep(clone(param))));
    try {
      this.copyTo();
      return fn();
    } finally {
      noGrad(() => this.params.forEach(({ param }, i) => param.copy_(saved[i]!)));
      for (const t of saved) t.dispose();
    }
  }

  /** The shadow weights by parameter name: new handles on the same storage (dispose when written). */
  stateDict(): Record<string, Tensor> {
    const out: Record<string, Tensor> = {};
    for (const [name, t] of this.shadow) out[name] = t.detach();
    return out;
  }

  /** Copies shadow weights in; every parameter must be present with its shape. */
  loadStateDict(sd: Record<string, Tensor>): void {
    for (const key of Object.keys(sd)) if (!this.shadow.has(key)) throw new ArgError(`EMA.loadStateDict: unexpected key '${key}'; it is not a parameter of this EMA`);
    for (const [name, t] of this.shadow) {
      const src = sd[name];
      if (!src) throw new ArgError(`EMA.loadStateDict: missing '${name}'`);
      if (src.shape.join(',') !== t.shape.join(',')) throw new ArgError(`EMA.loadStateDict: '${name}' has shape [${src.shape.join(', ')}], expected [${t.shape.join(', ')}]`);
    }
    noGrad(() => {
      for (const [name, t] of this.shadow) t.copy_(sd[name]!);
    });
  }

  dispose(): void {
    for (const t of this.shadow.values()) t.dispose();
    this.shadow.clear();
  }
}
