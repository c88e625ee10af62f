// A run's own data: the split a run was trained and tested on, as its model reads it.
import { ArgError } from '../errors.js';
import { loadDataset } from '../data/index.js';
import { tileSet } from '../data/crop.js';
import { subsampleSet } from '../data/subsample.js';
import type { ImageSet } from '../data/types.js';
import type { RunConfig } from './run.js';

export interface RunSplitOptions {
  split?: 'train' | 'test';
  /** Another dataset spec than the run's own. */
  data?: string;
  /** Resize to N×N (default: as the run was, or the one size that fits the model). */
  size?: number;
  cacheDir?: string;
  onProgress?: (msg: string) => void;
}

/**
 * The split at the run's stored bit depth, resized as the run was (its config's size) and
 * subsampled like the run. For runs from before `size` was recorded: when the data's images do
 * not match the model, the one size that would fit is used.
 */
export async function loadRunSplit(cfg: RunConfig, o: RunSplitOptions = {}): Promise<{ set: ImageSet; spec: string }> {
  const split = o.split ?? 'test';
  if (split !== 'test' && split !== 'train') throw new ArgError(`split ${String(split)}: expected test or train`);
  const spec = o.data ?? cfg.data;
  const { height: H, width: W, channels: C } = cfg.model;
  const sub = cfg.subsample;
  const log = o.onProgress ?? (() => {});
  const load = async (size?: number) => {
    const d = await loadDataset(spec, {
      bits: cfg.dataBits,
      ...(size ? { size } : {}),
      ...(o.cacheDir ? { cacheDir: o.cacheDir } : {}),
      onProgress: (m) => log(`data: ${m}`),
    });
    return d[split];
  };
  let raw = await load(o.size ?? cfg.size ?? undefined);
  if (o.size === undefined && !cfg.crop && (raw.h !== H * sub || raw.w !== W * sub) && H === W && raw.c === C) {
    log(`data: ${spec} has ${raw.h}×${raw.w} images, the model reads ${H * sub}×${W * sub}: resizing to ${H * sub}×${W * sub}`);
    raw = await load(H * sub);
  }
  if (raw.h % sub || raw.w % sub) throw new ArgError(`data ${spec} has ${raw.h}×${raw.w} images, not divisible by the run's subsample ${sub}`);
  // A run trained on crops reads the split as its images' crop×crop tiles (data/crop.ts).
  const set = cfg.crop ? tileSet(subsampleSet(raw, sub), cfg.crop) : subsampleSet(raw, sub);
  if (set.h !== H || set.w !== W || set.c !== C) {
    throw new ArgError(`data ${spec} (${split}) has images ${set.h}×${set.w}×${set.c}${sub > 1 ? ` after subsampling by ${sub}` : ''}${cfg.crop ? ` (tiles of ${cfg.crop}×${cfg.crop})` : ''}, the model expects ${H}×${W}×${C}`);
  }
  return { set, spec };
}
