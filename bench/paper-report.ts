// BENCHMARKS.md's section for bench/paper.ts (the CelebA-HQ 256 recipe's stages at their real
// size on CPU), from bench/results/paper.json. Only numbers found there are written.
import * as path from 'node:path';
import type { PaperReport, PaperStageReport, TrainerPhase } from './paper.js';
import { cell, fmt, int, notRunText, readJson, type NotRunFields } from './md.js';

export function paperSection(dir: string): string {
  const r = readJson<PaperReport | NotRunFields>(path.join(dir, 'paper.json'));
  const missing = notRunText(r as NotRunFields | null, 'paper');
  if (missing) return missing;
  const d = r as PaperReport;
  const mb = (x: number) => `${int(x)} MB`;
  // paper.json from before the trainer's own evaluation was measured has no `trainer`: the stand-in everywhere
  const trainerOf = (s: PaperStageReport): TrainerPhase | null => (s.trainer && !('not_run' in s.trainer) ? s.trainer : null);
  const trainerStages = d.stages.filter((s) => trainerOf(s)).map((s) => s.name);
  const standIn = d.stages.filter((s) => !trainerOf(s)).map((s) => s.name);
  const itEval = (s: PaperStageReport) => {
    const t = trainerOf(s);
    return t ? `${t.test_record ? '' : 'killed at '}${mb(t.eval_peak_rss_mb)} (trainer; its step: ${mb(t.train_record.rss_peak_mb)})` : `${mb(s.train1.in_training_eval.peak_rss_mb)} (stand-in)`;
  };
  const lines = [
    `${d.date.slice(0, 16)}, \`${d.command}\`${d.quick ? ' (quick: tiny networks of the stages\' shapes, nothing to read from them)' : ''}. Machine: ${d.machine.cpuModel}, ${d.machine.cores} cores usable (shared with other jobs; load average ${d.load_before.map((x) => fmt(x, 1)).join(', ')} before, ${d.load_after.map((x) => fmt(x, 1)).join(', ')} after), ${d.machine.memGB} GB; CPU flags ${d.cpu_flags.length ? d.cpu_flags.map((f) => `\`${f}\``).join(', ') : 'avx512_bf16 and amx_tile: neither present'}; ${d.libtorch}, fp32, ${d.threads} libtorch thread(s). GPU: ${d.gpu}.`,
    '',
    `Recipe \`${d.recipe}\` (\`spn recipe ${d.recipe}\`), each stage at its preset's size with freshly initialised weights and pseudo-random pixels, each measurement in a child process of its own (peak RSS: VmHWM). A training step: forward, backward and AdamW on one random slice per image. In-training evaluation: on ${trainerStages.length ? trainerStages.map((n) => `the ${n} stage`).join(' and ') : 'no stage'}, the trainer's own: \`train()\` (src/train/trainer.ts) run in a child process with the stage's \`spn train\` arguments as the recipe prints them (a folder of pseudo-random PNGs, on the CPU) plus batch 1, 10 steps (its first train record), \`train.evalImages=1\`: its evaluation of 1 test image over every slice, the peak RSS read from the \`rss_peak_mb\` of its metrics records (the process's VmHWM as each is written; the child is ended after the test record, before the final checkpoint and sample grid)${standIn.length ? `; on ${standIn.map((n) => `the ${n} stage`).join(' and ')}, a stand-in (not the trainer): in the training phase's process after its steps, a few slices' model.nll (nothing of a slice outlives it)` : ''}. Exact evaluation per image: the base stage through \`evaluate()\` whole; the upscaling stages' first 4 slices timed and multiplied by their slices. Sampling per image: the first slice drawn, timed and multiplied by the slices the stage draws.`,
    '',
    '| stage | preset | images | S | params | step, batch 1 | peak RSS, batch 1 (model + AdamW) | preset batch | in-training eval peak | exact eval / image | eval peak RSS | sampling / image (one slice) |',
    '| --- | --- | --- | --: | --: | --: | --: | --- | --: | --: | --: | --: |',
    ...d.stages.map((s) => {
      const t = s.train1;
      const pb = 'not_run' in s.trainPreset ? `${s.trainPreset.batch}: not run (${cell(s.trainPreset.not_run)})` : `${s.trainPreset.batch}: ${fmt(s.trainPreset.step_s[s.trainPreset.step_s.length - 1], 1)} s, ${mb(s.trainPreset.peak_rss_mb)}`;
      return `| ${s.name} | \`${s.preset}\` --stage ${s.stage} | ${s.shape.join('×')} at ${s.bits} bits | ${s.scale} | ${fmt(s.params / 1e6, 1)}M | ${fmt(t.step_s[t.step_s.length - 1], 1)} s | ${mb(t.peak_rss_mb)} (${mb(t.model_rss_mb)}) | ${pb} | ${itEval(s)} | ${fmt(s.eval.s_per_image, 0)} s (${s.eval.timed_slices} of ${s.eval.slices} slices timed) | ${mb(s.eval.peak_rss_mb)} | ${fmt(s.sample.s_per_image, 0)} s (${fmt(s.sample.slice_s, 1)} s × ${s.sample.slices}) |`;
    }),
    '',
    ...(trainerStages.length ? [
      "The trainer's in-training evaluation (its own metrics records; eval time: from the train record's appearance to the test record's):",
      '',
      '| stage | steps at batch 1 | train record: rss_peak_mb | s/step | test record: rss_peak_mb | VmHWM seen from outside | its evaluation (images, slices) | s/slice |',
      '| --- | --: | --: | --: | --: | --: | --: | --: |',
      ...d.stages.flatMap((s) => {
        const t = trainerOf(s);
        if (!t) return [];
        const peak = t.test_record ? mb(t.test_record.rss_peak_mb) : `none: killed at ${mb(t.eval_peak_rss_mb)} (${cell(t.killed ?? '')})`;
        const seen = t.observed_peak_rss_mb === null ? '-' : mb(t.observed_peak_rss_mb);
        return [`| ${s.name} | ${t.steps} | ${mb(t.train_record.rss_peak_mb)} | ${fmt(t.step_s, 1)} s | ${peak} | ${seen} | ${t.test_record ? '' : 'to the kill: '}${fmt(t.eval_s, 0)} s (${t.eval_images}, ${t.slices}) | ${fmt(t.s_per_slice, 1)} s |`];
      }),
      ...(standIn.length ? ['', `Not run through the trainer: ${standIn.map((n) => { const t = d.stages.find((x) => x.name === n)!.trainer; return `${n} (${cell(t && 'not_run' in t ? t.not_run : 'measured before the trainer run was part of this benchmark')})`; }).join('; ')}.`] : []),
      '',
    ] : []),
    "Targets of issue #21 (memory at 256×256):",
    '',
    '| target | limit | measured | |',
    '| --- | --: | --: | --- |',
    ...d.targets.map((t) => `| ${cell(t.name)} | ${mb(t.limit_mb)} | ${mb(t.measured_mb)} | ${t.met ? 'met' : '**missed**'} |`),
  ];
  return lines.join('\n');
}
