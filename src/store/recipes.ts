// The paper's experiments as recipes: a named chain of stages, each one `spn train` command (a
// preset and its --subsample/--bits/--stage/--given-bits/--scale), and the pipeline file that
// lists their run folders in order, so that `spn eval|sample|compress --pipeline` work on the
// trained chain (store/pipeline.ts). No libtorch here: `spn recipe` only prints and writes JSON.
//
// What is the paper's and what is ours is said per recipe (`paper`, `ours`): the README's table
// is written from the same words. Where the paper's text available to us did not say a thing
// (model sizes of the CelebA-HQ stages, the 5-bit chain), the recipe says so rather than guess.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ArgError } from '../errors.js';
import { writeFileAtomic } from '../fsutil.js';
import type { PipelineFile } from './pipeline.js';

export interface RecipeStage {
  /** The run folder's name under the recipe's --out, also the stage's name in the listing. */
  name: string;
  preset: string;
  stage: 'full' | 'size' | 'depth';
  /** --subsample s: a base model of x[::s, ::s]. */
  subsample?: number;
  bits?: number;
  givenBits?: number;
  scale?: number;
  /** What the stage generates, in words. */
  what: string;
}

export interface Recipe {
  name: string;
  description: string;
  /** A placeholder dataset spec; `--data` replaces it. */
  data: string;
  /** The final images: H×W×C at `bits`. */
  shape: [number, number, number];
  bits: number;
  stages: RecipeStage[];
  /** The paper's setting, in words: S, slice size, bits, stage order, model size where it says. */
  paper: string;
  /** Where ours differs, and what we could not find in the paper. */
  ours: string;
}

export const RECIPES: Record<string, Recipe> = {
  'celebahq256-8bit': {
    name: 'celebahq256-8bit',
    description: 'CelebA-HQ 256×256 8-bit by Multidimensional Upscaling: 32×32 3-bit -> 256×256 3-bit (S=8) -> 256×256 8-bit',
    data: 'folder:data/celebahq256',
    shape: [256, 256, 3],
    bits: 8,
    stages: [
      { name: 'base', preset: 'celebahq256-base', stage: 'full', subsample: 8, bits: 3, what: '32×32×3 at 3 bits (slice 0 of the 256×256 image at S=8), S=2: four 16×16 slices' },
      { name: 'size', preset: 'celebahq256-gpu', stage: 'size', bits: 3, what: '256×256×3 at 3 bits: slices 1..63 of S=8 (32×32 each) given slice 0' },
      { name: 'depth', preset: 'celebahq256-gpu', stage: 'depth', givenBits: 3, what: '256×256×3 at 8 bits: the low 5 bits given the high 3, S=8' },
    ],
    paper: 'three networks: a decoder of small low-depth images (the 256×256 image subsampled), a size-upscaling decoder to 256×256 at low depth, a depth-upscaling decoder to 8 bits (the 3-bit intermediate depth and S=8 with 32×32 slices as issue #21 states them: not confirmed in the text we could read)',
    ours: 'the stage order and bits as the paper; the base model\'s S=2 and every width/depth (512 wide, 8 conditioning + 8 decoder blocks) are ours: the paper\'s per-stage layer counts, widths and batch sizes were not in the text we could read',
  },
  'celebahq256-5bit': {
    name: 'celebahq256-5bit',
    description: 'CelebA-HQ 256×256 5-bit: 32×32 5-bit -> 256×256 5-bit (S=8)',
    data: 'folder:data/celebahq256',
    shape: [256, 256, 3],
    bits: 5,
    stages: [
      { name: 'base', preset: 'celebahq256-base', stage: 'full', subsample: 8, bits: 5, what: '32×32×3 at 5 bits (slice 0 of the 256×256 image at S=8), S=2' },
      { name: 'size', preset: 'celebahq256-gpu', stage: 'size', bits: 5, what: '256×256×3 at 5 bits: slices 1..63 of S=8 given slice 0' },
    ],
    paper: 'CelebA-HQ 256 at 5 bits is named by issue #21 as one of the paper\'s settings; what the paper\'s 5-bit chain was (S, stages) was not in the text we could read',
    ours: 'size upscaling alone at 5 bits: a depth stage here always ends at 8 bits (givenBits + bits = 8), so a 3-bit -> 5-bit depth stage is not expressible; whether the paper\'s 5-bit model used a depth stage we could not find',
  },
  imagenet64: {
    name: 'imagenet64',
    description: 'ImageNet 64×64 8-bit: one SPN, S=4 (sixteen 16×16 slices), at the paper\'s size',
    data: 'imagenet:data/imagenet64',
    shape: [64, 64, 3],
    bits: 8,
    stages: [{ name: 'spn', preset: 'imagenet64-paper', stage: 'full', what: '64×64×3 at 8 bits, S=4: sixteen 16×16 slices' }],
    paper: 'a single SPN on 64×64 8-bit images; 3.52 bits/dim on the test set (as a results listing quotes the paper)',
    ours: 'S=4 and about 150M parameters as the project\'s imagenet64-paper preset (672 wide, 8 + 8 blocks); the paper\'s exact layer counts, batch size and learning-rate schedule were not in the text we could read',
  },
  imagenet32: {
    name: 'imagenet32',
    description: 'ImageNet 32×32 8-bit: one SPN, S=2 (four 16×16 slices)',
    data: 'imagenet:data/imagenet32',
    shape: [32, 32, 3],
    bits: 8,
    stages: [{ name: 'spn', preset: 'imagenet32-gpu', stage: 'full', what: '32×32×3 at 8 bits, S=2: four 16×16 slices' }],
    paper: 'a single SPN on 32×32 8-bit images; 3.85 bits/dim on the test set (as a results listing quotes the paper)',
    ours: 'S=2 (16×16 slices) and the imagenet32-gpu preset (512 wide, 8 + 8 blocks), not the paper\'s size, which we could not find',
  },
};

export function getRecipe(name: string): Recipe {
  const r = RECIPES[name];
  if (!r) throw new ArgError(`unknown recipe '${name}'; expected one of ${Object.keys(RECIPES).join(', ')}`);
  return r;
}

export interface RecipePlanOptions {
  /** Dataset spec of the final images (default: the recipe's placeholder). */
  data?: string;
  /** Folder of the stages' run folders and of pipeline.json (default: runs/<recipe>). */
  out?: string;
  /** --device of every command (default cuda: the recipes are sized for GPUs). */
  device?: string;
  /** --minutes of every command (`spn train` needs a limit; default one day per stage). */
  minutes?: number;
}

/** A day per stage unless told otherwise: the paper's models train far longer than a session. */
export const DEFAULT_RECIPE_MINUTES = 1440;

export interface RecipePlan {
  recipe: Recipe;
  out: string;
  pipeline: string;
  /** One `spn train` argument list per stage (without the leading `spn`), in order. */
  commands: { stage: RecipeStage; dir: string; argv: string[] }[];
  /** The pipeline file's contents: the run folders relative to it. */
  file: PipelineFile;
}

/** The exact `spn train` arguments of each stage and the pipeline file of a recipe. */
export function planRecipe(r: Recipe, o: RecipePlanOptions = {}): RecipePlan {
  const out = o.out ?? path.join('runs', r.name);
  const data = o.data ?? r.data;
  const device = o.device ?? 'cuda';
  const commands = r.stages.map((s) => {
    const dir = path.join(out, s.name);
    const argv = ['train', '--data', data, '--preset', s.preset];
    if (s.stage !== 'full') argv.push('--stage', s.stage);
    if (s.subsample !== undefined) argv.push('--subsample', String(s.subsample));
    if (s.bits !== undefined) argv.push('--bits', String(s.bits));
    if (s.givenBits !== undefined) argv.push('--given-bits', String(s.givenBits));
    if (s.scale !== undefined) argv.push('--scale', String(s.scale));
    argv.push('--device', device, '--minutes', String(o.minutes ?? DEFAULT_RECIPE_MINUTES), '--out', dir);
    return { stage: s, dir, argv };
  });
  return { recipe: r, out, pipeline: path.join(out, 'pipeline.json'), commands, file: { stages: r.stages.map((s) => ({ run: s.name })) } };
}

/** A shell word: quoted only when it needs to be. */
export function shellWord(w: string): string {
  return /^[\w@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`;
}

/** Writes <out>/pipeline.json (atomically) and returns its path. */
export function writeRecipePipeline(plan: RecipePlan): string {
  fs.mkdirSync(plan.out, { recursive: true });
  writeFileAtomic(plan.pipeline, JSON.stringify(plan.file, null, 2) + '\n');
  return plan.pipeline;
}
