// `spn presets` (definition in presets.ts): the model presets, what each is for, and its
// parameter count.
import { PRESETS, parseModelConfig } from '../spn/config.js';
import { SPN } from '../spn/model.js';
import type { PresetsCommandOptions } from './presets.js';

export interface PresetRow { name: string; description: string; shape: [number, number, number]; scale: number; dim: number; layers: string; parameters: number }

/** Parameter counts come from building each model on libtorch's 'meta' device: no memory, no init cost. */
export function presetTable(): PresetRow[] {
  return Object.entries(PRESETS).map(([name, p]) => {
    const [height, width, channels] = p.shape;
    const cfg = parseModelConfig({ ...p.model, height, width, channels });
    const model = new SPN(cfg, { device: 'meta' });
    const parameters = model.numParameters();
    model.dispose();
    return { name, description: p.description, shape: p.shape, scale: cfg.scale, dim: cfg.dim, layers: `${cfg.condLayers} cond + ${cfg.decLayers} dec`, parameters };
  });
}

export function run(o: PresetsCommandOptions): void {
  const rows = presetTable();
  if (o.json) {
    process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
    return;
  }
  for (const r of rows) {
    process.stdout.write(`${r.name.padEnd(16)} ${r.shape.join('×').padEnd(10)} S=${String(r.scale).padEnd(2)} width ${String(r.dim).padEnd(4)} ${r.layers.padEnd(14)} ${(r.parameters / 1e6).toFixed(2).padStart(7)}M params  ${r.description}\n`);
  }
}
