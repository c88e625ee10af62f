// BENCHMARKS.md's section for bench/data.ts (the data cache at the paper's sizes), from
// bench/results/data.json. Only numbers found there are written.
import * as path from 'node:path';
import type { DataReport } from './data.js';
import { fmt, int, notRunText, readJson, type NotRunFields } from './md.js';

export function dataSection(dir: string): string {
  const r = readJson<DataReport | NotRunFields>(path.join(dir, 'data.json'));
  const missing = notRunText(r as NotRunFields | null, 'data');
  if (missing) return missing;
  const d = r as DataReport;
  const im = d.imagenet;
  const gb = (b: number) => `${fmt(b / 1e9, 2)} GB`;
  const t = im.train;
  const lines = [
    `${d.date.slice(0, 16)}, \`${d.command}\`${d.quick ? ' (quick: tiny sizes, nothing to read from them)' : ''}. Machine: ${d.machine.cpuModel}, ${d.machine.cores} cores usable (shared with other jobs), ${d.machine.memGB} GB; CPU flags ${d.cpu_flags.length ? d.cpu_flags.map((f) => `\`${f}\``).join(', ') : 'avx512_bf16 and amx_tile: neither present'}; ${d.libtorch}, ${d.threads} libtorch thread(s).`,
    '',
    `**A synthetic release in downsampled ImageNet 64's npz layout** (bench/data.ts writes it: 10 \`train_data_batch_N.npz\` and \`val_data.npz\`, stored zip64 members as numpy writes them, pseudo-random pixels): ${int(im.train_images)} training images${im.full_size ? ' (the full size)' : ` (**not** the full 1,281,167: ${int(im.train_images)} is what was run)`} and ${int(im.val_images)} validation images, ${gb(im.release_bytes)}, written in ${fmt(im.generate_s, 0)} s.`,
    '',
    '| step | images | seconds | images/s | peak RSS of the process |',
    '| --- | --: | --: | --: | --: |',
    `| decode into the cache (\`loadDataset('imagenet:DIR')\`, ${gb(im.decode.cache_bytes)} written) | ${int(im.decode.images + im.decode.test_images)} | ${fmt(im.decode.seconds, 1)} | ${int(im.decode.images_per_s)} | ${int(im.decode.peak_rss_mb)} MB |`,
    ...(d.jpeg
      ? [`| decode a folder of ${int(d.jpeg.images)} generated 256×256 JPEGs (${fmt(d.jpeg.folder_bytes / 1e6, 0)} MB; \`folder:DIR\`, ${gb(d.jpeg.decode.cache_bytes)} cache) | ${int(d.jpeg.decode.images + d.jpeg.decode.test_images)} | ${fmt(d.jpeg.decode.seconds, 1)} | ${int(d.jpeg.decode.images_per_s)} | ${int(d.jpeg.decode.peak_rss_mb)} MB |`]
      : []),
    '',
    `**Training from the cache file against an in-memory set.** A small model of imagenet64-gpu's shape (64×64×3, S=4, dim 64, 1+1 layers), batch ${t.batch}, fp32 on CPU, AdamW; each timed step includes gathering its batch (shuffled, by index: positioned reads from the ${gb(im.decode.cache_bytes)} cache file, or copies from a 2,048-image set in memory). One process, one model, ${t.steps} steps per source in the order cache, memory, memory, cache (repeated) after 3 warm-up steps each, so the other jobs on the machine slow both alike:`,
    '',
    '| source | median ms/step | images/s | median ms to gather a batch (inside the step) |',
    '| --- | --: | --: | --: |',
    `| cache file (${int(im.train_images)} images) | ${fmt(t.step_ms.cache, 1)} | ${fmt(t.images_per_s.cache, 1)} | ${fmt(t.gather_ms?.cache, 3)} |`,
    `| memory (2,048 images) | ${fmt(t.step_ms.memory, 1)} | ${fmt(t.images_per_s.memory, 1)} | ${fmt(t.gather_ms?.memory, 3)} |`,
    '',
    `Throughput from the cache / from memory: **${fmt(im.cache_vs_memory, 3)}** (ratio of the medians); paired by group of four steps (median of memory ms / cache ms over each cache, memory, memory, cache group): **${fmt(im.paired_cache_vs_memory, 3)}**. Peak RSS (VmHWM of /proc/self/status: the process's resident pages; the kernel's page cache holding the file is not in it), one process per source, ${im.rss.cache.steps} steps each (the alternating run above, one process with both sources and twice the steps, peaked at ${int(t.peak_rss_mb)} MB): cache ${int(im.rss.cache.peak_rss_mb)} MB, memory ${int(im.rss.memory.peak_rss_mb)} MB, the model and optimizer alone ${int(im.rss.memory.model_rss_mb)} MB before the first step; the cache run's peak over the memory run's: **${fmt(im.cache_rss_over_memory_mb, 0)} MB** (the in-memory set itself is 25 MB).`,
  ];
  return lines.join('\n');
}
