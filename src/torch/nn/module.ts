// Module: a tree of parameters, buffers and submodules, as in torch.nn.Module.
//
// Parameters are trained and saved (stateDict); buffers are tensors a module owns but does not
// train or save, because they follow from its config (masks, index tables, value tables), like
// PyTorch's register_buffer(persistent=False). dispose() frees both, in every submodule; to()
// moves both in place, so the fields that hold them stay valid.
import { ArgError } from '../../errors.js';
import { isDType, isFloating, type DType } from '../dtype.js';
import { call } from '../ops.js';
import { Tensor, keep, noGrad } from '../tensor.js';

export abstract class Module {
  training = true;
  readonly #params = new Map<string, Tensor>();
  readonly #buffers = new Map<string, Tensor>();
  readonly #children = new Map<string, Module>();

  /** Registers a trainable parameter (it requires grad and outlives tidy() scopes). */
  protected param(name: string, t: Tensor): Tensor {
    keep(t);
    t.requiresGrad = true;
    this.#params.set(name, t);
    return t;
  }

  /** Registers a buffer: owned (freed and moved with the module), not trained, not saved. */
  protected buffer(name: string, t: Tensor): Tensor {
    keep(t);
    this.#buffers.set(name, t);
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

  namedBuffers(prefix = ''): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [n, b] of this.#buffers) out.push([prefix + n, b]);
    for (const [n, c] of this.#children) out.push(...c.namedBuffers(`${prefix}${n}.`));
    return out;
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, p]) => p);
  }

  buffers(): Tensor[] {
    return this.namedBuffers().map(([, b]) => b);
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

  /**
   * Moves every parameter and buffer, in this module and its children, to a device ('cpu',
   * 'cuda:0') or a dtype, in place: each tensor keeps its identity (its data is swapped, as
   * PyTorch's `param.data = ...`), so fields and optimizer references stay valid. A dtype applies
   * to floating tensors only (index tables stay integer).
   */
  to(target: string): this {
    const dtype = isDType(target);
    noGrad(() => {
      for (const t of [...this.parameters(), ...this.buffers()]) {
        if (dtype && !isFloating(t.dtype)) continue;
        const moved = t.to(target as DType);
        call('aten::set_data', [t, moved]);
        moved.dispose();
      }
    });
    return this;
  }

  /** Frees every parameter and buffer of this module and its children. */
  dispose(): void {
    for (const t of [...this.parameters(), ...this.buffers()]) t.dispose();
  }
}
