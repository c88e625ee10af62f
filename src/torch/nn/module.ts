// Module: a tree of parameters and submodules, as in torch.nn.Module.
import { ArgError } from '../../errors.js';
import { Tensor, keep, noGrad } from '../tensor.js';

export abstract class Module {
  training = true;
  readonly #params = new Map<string, Tensor>();
  readonly #children = new Map<string, Module>();

  /** Registers a trainable parameter (it requires grad and outlives tidy() scopes). */
  protected param(name: string, t: Tensor): Tensor {
    keep(t);
    t.requiresGrad = true;
    this.#params.set(name, t);
    return t;
  }

  /** Registers a submodule under `name`. */
  protected child<M extends Module>(name: string, m: M): M {
    this.#children.set(name, m);
    return m;
  }

  namedParameters(prefix = ''): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [n, p] of this.#params) out.push([prefix + n, p]);
    for (const [n, c] of this.#children) out.push(...c.namedParameters(`${prefix}${n}.`));
    return out;
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, p]) => p);
  }

  numParameters(): number {
    return this.parameters().reduce((a, p) => a + p.numel, 0);
  }

  train(on = true): this {
    this.training = on;
    for (const c of this.#children.values()) c.train(on);
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  zeroGrad(): void {
    for (const p of this.parameters()) p.grad = null;
  }

  /** The parameters by name (the live tensors, not copies). */
  stateDict(): Record<string, Tensor> {
    return Object.fromEntries(this.namedParameters());
  }

  /** Copies values in; names and shapes must match exactly unless strict is false. */
  loadStateDict(sd: Record<string, Tensor>, strict = true): void {
    const own = new Map(this.namedParameters());
    if (strict) {
      const missing = [...own.keys()].filter((k) => !(k in sd));
      const unexpected = Object.keys(sd).filter((k) => !own.has(k));
      if (missing.length || unexpected.length) {
        throw new ArgError(`state dict does not match the model: missing [${missing.join(', ')}], unexpected [${unexpected.join(', ')}]`);
      }
    }
    noGrad(() => {
      for (const [name, p] of own) {
        const src = sd[name];
        if (!src) continue;
        if (src.shape.join(',') !== p.shape.join(',')) {
          throw new ArgError(`state dict entry '${name}' has shape [${src.shape}], the model expects [${p.shape}]`);
        }
        p.copy_(src);
      }
    });
  }

  /** Moves every parameter to a device or dtype in place (the Module keeps its tensors' identity by name). */
  to(target: string): this {
    for (const [n, p] of this.#params) {
      const moved = noGrad(() => p.to(target as never).detach());
      p.dispose();
      this.#params.set(n, this.param(n, moved));
    }
    for (const c of this.#children.values()) c.to(target);
    return this;
  }

  /** Frees every parameter. */
  dispose(): void {
    for (const p of this.parameters()) p.dispose();
  }
}
