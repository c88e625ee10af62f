// Progress for long work: a live bar on a terminal, plain periodic lines elsewhere (CI, logs).
import cliProgress from 'cli-progress';


export interface Progress {
  update(done: number, fields: Record<string, string>): void;
  stop(): void;
}

export { formatDuration } from '../format.js';

/** `label` names the work; `total` may be 0 when unknown (time-budgeted runs report a percentage). */
export function createProgress(label: string, total: number, o: { quiet?: boolean; plainEverySec?: number } = {}): Progress {
  if (o.quiet) return { update() {}, stop() {} };
  if (process.stderr.isTTY) {
    const bar = new cliProgress.SingleBar(
      { format: `${label} [{bar}] {percentage}% | {text}`, hideCursor: true, barsize: 24, etaBuffer: 50, stream: process.stderr },
      cliProgress.Presets.shades_classic,
    );
    bar.start(Math.max(1, total), 0, { text: '' });
    return {
      update(done, fields) { bar.update(done, { text: Object.entries(fields).map(([k, v]) => `${k} ${v}`).join(' | ') }); },
      stop() { bar.stop(); },
    };
  }
  let last = 0;
  const every = (o.plainEverySec ?? 10) * 1000;
  return {
    update(done, fields) {
      const now = Date.now();
      if (now - last < every && done < total) return;
      last = now;
      const pct = total ? ` ${((100 * done) / total).toFixed(0)}%` : '';
      process.stderr.write(`${label}${pct} | ${Object.entries(fields).map(([k, v]) => `${k} ${v}`).join(' | ')}\n`);
    },
    stop() {},
  };
}
