// The area under the ROC curve of a detector that flags high scores: the probability that a
// random positive (out-of-distribution) image scores above a random negative (in-distribution)
// one, ties counting one half (the Mann–Whitney U statistic over n⁺·n⁻).
import { ArgError } from '../errors.js';

export function auroc(positives: ArrayLike<number>, negatives: ArrayLike<number>): number {
  const np = positives.length;
  const nn = negatives.length;
  if (!np || !nn) throw new ArgError(`auroc: needs at least one positive and one negative score (got ${np} and ${nn})`);
  const all: { v: number; pos: boolean }[] = [];
  for (let i = 0; i < np; i++) all.push({ v: positives[i]!, pos: true });
  for (let i = 0; i < nn; i++) all.push({ v: negatives[i]!, pos: false });
  for (const a of all) if (!Number.isFinite(a.v)) throw new ArgError(`auroc: score ${a.v} is not a finite number`);
  all.sort((a, b) => a.v - b.v);
  // Sum of the positives' ranks (1-based), tied values sharing their average rank.
  let rankSum = 0;
  for (let i = 0; i < all.length; ) {
    let j = i;
    while (j < all.length && all[j]!.v === all[i]!.v) j++;
    const rank = (i + 1 + j) / 2;
    for (let k = i; k < j; k++) if (all[k]!.pos) rankSum += rank;
    i = j;
  }
  return (rankSum - (np * (np + 1)) / 2) / (np * nn);
}
