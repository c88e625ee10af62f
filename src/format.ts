// Durations as people read them, for the terminal (progress bars, summaries) and the dashboard,
// which loads the compiled copy of this file (/format.js): one definition for both. No imports,
// so the compiled module runs in a browser as it is.

/** Seconds as "m:ss" or "h:mm:ss"; "--:--" when unknown (not finite). */
export function formatDuration(s: number): string {
  if (!Number.isFinite(s)) return '--:--';
  s = Math.max(0, Math.round(s));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  return h ? `${h}:${String(m).padStart(2, '0')}:${String(sec).padStart(2, '0')}` : `${m}:${String(sec).padStart(2, '0')}`;
}

/** "a, b or c". */
export function orList(values: readonly string[]): string {
  return values.length < 2 ? values.join('') : `${values.slice(0, -1).join(', ')} or ${values[values.length - 1]}`;
}
