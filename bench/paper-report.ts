// BENCHMARKS.md's section for bench/paper.ts (the CelebA-HQ 256 recipe's stages at their real
// size on CPU), from bench/results/paper.json. Only numbers found there are written.
import * as path from 'node:path';
import type { PaperReport } from './paper.js';
import { cell, fmt, int, notRunText, readJson, type NotRunFields } from './md.js';

export function paperSection(dir: string): string {
  const r = readJson<PaperReport | NotRunFields>(path.join(dir, 'paper.json'));
  const missing = notRunText(r as NotRunFields | null, 'paper');
  if (missing) return missing;
  const d = r as PaperReport;
  const mb = (x: number) => `${int(x)} MB`;
  const lines = [
    `${d.date.slice(0, 16)}, \`${d.command}\`${d.quick ? ' (quick: tiny networks of the stages\' shapes, nothing to read from them)' : ''}. Machine: ${d.machine.cpuModel}, ${d.machine.cores} cores usable (shared with other jobs; load average ${d.load_before.map((x) => fmt(x, 1)).join(', ')} before, ${d.load_after.map((x) => fmt(x, 1)).join(', ')} after), ${d.machine.memGB} GB; CPU flags ${d.cpu_flags.length ? d.cpu_flags.map((f) => `\`${f}\``).join(', ') : 'avx512_bf16 and amx_tile: neither present'}; ${d.libtorch}, fp32, ${d.threads} libtorch thread(s). GPU: ${d.gpu}.`,
    '',
    `Recipe \`${d.recipe}\` (\`spn recipe ${d.recipe}\`), each stage at its preset's size with freshly initialised weights and pseudo-random pixels, each measurement in a child process of its own (peak RSS: VmHWM). A training step: forward, backward and AdamW on one random slice per image. In-training evaluation: in the training process after its steps, a few slices' forward passes (nothing of a slice outlives it, so their peak is the whole evaluation's). Exact evaluation per image: the base stage through \`evaluate()\` whole; the upscaling stages' first 4 slices timed and multiplied by their slices. Sampling per image: the first slice drawn, timed and multiplied by the slices the stage draws.`,
    '',
    '| stage | preset | images | S | params | step, batch 1 | peak RSS, batch 1 (model + AdamW) | preset batch | in-training eval peak | exact eval / image | eval peak RSS | sampling / image (one slice) |',
    '| --- | --- | --- | --: | --: | --: | --: | --- | --: | --: | --: | --: |',
    ...d.stages.map((s) => {
      const t = s.train1;
      const pb = 'not_run' in s.trainPreset ? `${s.trainPreset.batch}: not run (${cell(s.trainPreset.not_run)})` : `${s.trainPreset.batch}: ${fmt(s.trainPreset.step_s[s.trainPreset.step_s.length - 1], 1)} s, ${mb(s.trainPreset.peak_rss_mb)}`;
      return `| ${s.name} | \`${s.preset}\` --stage ${s.stage} | ${s.shape.join('×')} at ${s.bits} bits | ${s.scale} | ${fmt(s.params / 1e6, 1)}M | ${fmt(t.step_s[t.step_s.length - 1], 1)} s | ${mb(t.peak_rss_mb)} (${mb(t.model_rss_mb)}) | ${pb} | ${mb(t.in_training_eval.peak_rss_mb)} | ${fmt(s.eval.s_per_image, 0)} s (${s.eval.timed_slices} of ${s.eval.slices} slices timed) | ${mb(s.eval.peak_rss_mb)} | ${fmt(s.sample.s_per_image, 0)} s (${fmt(s.sample.slice_s, 1)} s × ${s.sample.slices}) |`;
    }),
    '',
    "Targets of issue #21 (memory at 256×256):",
    '',
    '| target | limit | measured | |',
    '| --- | --: | --: | --- |',
    ...d.targets.map((t) => `| ${cell(t.name)} | ${mb(t.limit_mb)} | ${mb(t.measured_mb)} | ${t.met ? 'met' : '**missed**'} |`),
  ];
  return lines.join('\n');
}
