// `spn recipe`: the list, each recipe's `spn train` commands and its pipeline file, and that the
// stages of every recipe chain (each stage is given exactly what the one before outputs), checked
// on the model configs the commands resolve to (preset + flags), without training anything.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { register as registerRecipe } from '../../src/cli/recipe.js';
import { SpnError } from '../../src/errors.js';
import { PRESETS, parseModelConfig, type ModelConfig } from '../../src/spn/config.js';
import { PipelineFile } from '../../src/store/pipeline.js';
import { RECIPES, planRecipe, shellWord } from '../../src/store/recipes.js';
import type { TrainOptions } from '../../src/train/trainer.js';
import { cleanupTmp, tmpDir } from '../data/fixtures.js';
import { cli, parseTrain } from '../cli/in-process.js';

afterAll(() => cleanupTmp());


/** The model config a stage trains, as the trainer derives it: the preset, then the flags; the data's shape after --subsample. */
function stageModel(o: TrainOptions, final: [number, number, number]): ModelConfig {
  const p = PRESETS[o.preset!]!;
  const s = o.subsample ?? 1;
  const stage = o.stage ?? 'full';
  const givenBits = stage === 'depth' ? (o.givenBits ?? 3) : 0;
  return parseModelConfig({
    ...p.model, height: final[0] / s, width: final[1] / s, channels: final[2], stage, givenBits,
    bits: stage === 'depth' ? 8 - givenBits : (o.bits ?? p.model.bits), ...(o.scale !== undefined ? { scale: o.scale } : {}),
  });
}

describe('spn recipe', () => {
  it('lists every recipe', async () => {
    const text = await cli([registerRecipe], 'recipe');
    for (const name of Object.keys(RECIPES)) expect(text).toContain(name);
    const json = JSON.parse(await cli([registerRecipe], 'recipe', '--json')) as { name: string }[];
    expect(json.map((r) => r.name)).toEqual(Object.keys(RECIPES));
  });

  it('prints the CelebA-HQ 256 commands in order and writes the pipeline file', async () => {
    const out = path.join(tmpDir('spn-recipe-'), 'celeba');
    const text = await cli([registerRecipe], 'recipe', 'celebahq256-8bit', '--data', 'folder:/data/celeba hq', '--out', out);
    const lines = text.split('\n').filter((l) => l.startsWith('npx spn train'));
    expect(lines).toEqual([
      `npx spn train --data 'folder:/data/celeba hq' --preset celebahq256-base --subsample 8 --bits 3 --device cuda --minutes 1440 --out ${out}/base`,
      `npx spn train --data 'folder:/data/celeba hq' --preset celebahq256-gpu --stage size --bits 3 --device cuda --minutes 1440 --out ${out}/size`,
      `npx spn train --data 'folder:/data/celeba hq' --preset celebahq256-gpu --stage depth --given-bits 3 --device cuda --minutes 1440 --out ${out}/depth`,
    ]);
    const file = JSON.parse(fs.readFileSync(path.join(out, 'pipeline.json'), 'utf8'));
    expect(PipelineFile.parse(file)).toEqual({ stages: [{ run: 'base' }, { run: 'size' }, { run: 'depth' }] });
    expect(text).toContain(`npx spn eval --pipeline ${out}/pipeline.json`);
    expect(fs.readdirSync(out).filter((f) => f.includes('.tmp'))).toEqual([]); // atomic: no temp file left
  });

  it('--json gives the argv of each stage and --device applies to every stage', async () => {
    const out = tmpDir('spn-recipe-');
    const json = JSON.parse(await cli([registerRecipe], 'recipe', 'imagenet64', '--out', out, '--device', 'cpu', '--json'));
    expect(json.pipeline).toBe(path.join(out, 'pipeline.json'));
    expect(json.stages).toHaveLength(1);
    expect(json.stages[0].argv).toEqual(['train', '--data', 'imagenet:data/imagenet64', '--preset', 'imagenet64-paper', '--device', 'cpu', '--minutes', '1440', '--out', path.join(out, 'spn')]);
    expect(json.paper).toMatch(/3\.52/);
  });

  it('rejects an unknown recipe and a bad --device, naming what was expected', async () => {
    const err = await cli([registerRecipe], 'recipe', 'celeba').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SpnError);
    expect((err as SpnError).code).toBe('E_ARG');
    expect((err as Error).message).toMatch(/unknown recipe 'celeba'; expected one of celebahq256-8bit, celebahq256-5bit, imagenet64, imagenet32/);
    await expect(cli([registerRecipe], 'recipe', 'imagenet32', '--device', 'tpu')).rejects.toThrow(/--device tpu: expected cpu, cuda or cuda:N/);
  });

  it('quotes shell words only where needed', () => {
    expect(shellWord('folder:data/x-1')).toBe('folder:data/x-1');
    expect(shellWord("it's")).toBe(`'it'\\''s'`);
  });
});

describe('every recipe chains', () => {
  for (const r of Object.values(RECIPES)) {
    it(`${r.name}: each stage is given what the one before outputs, and the last outputs ${r.shape.join('×')} at ${r.bits} bits`, async () => {
      const plan = planRecipe(r, { out: '/tmp/x', device: 'cpu' });
      const models: ModelConfig[] = [];
      for (const c of plan.commands) models.push(stageModel(await parseTrain(c.argv), r.shape));
      models.forEach((m, i) => {
        if (i === 0) return expect(m.stage).toBe('full');
        const prev = models[i - 1]!;
        const prevBits = prev.stage === 'depth' ? prev.givenBits + prev.bits : prev.bits;
        if (m.stage === 'size') {
          expect([m.height / m.scale, m.width / m.scale]).toEqual([prev.height, prev.width]);
          expect(m.bits).toBe(prevBits);
        } else {
          expect(m.stage).toBe('depth');
          expect([m.height, m.width]).toEqual([prev.height, prev.width]);
          expect(m.givenBits).toBe(prevBits);
        }
      });
      const last = models[models.length - 1]!;
      expect([last.height, last.width, last.channels]).toEqual(r.shape);
      expect(last.stage === 'depth' ? last.givenBits + last.bits : last.bits).toBe(r.bits);
    });
  }
});
