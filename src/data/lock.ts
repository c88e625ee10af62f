// One decode per cache file at a time on a machine: data-parallel ranks (and any commands started
// together) that find no cache all call loadDataset at once, and without a lock each would decode
// the whole split (15.7 GB for ImageNet 64) beside the others. The first takes `<cache>.lock`
// (created exclusively, holding its pid); the others wait for it to go, then open the cache it
// wrote. A lock whose process is gone (killed mid-decode) is taken over.
import * as fs from 'node:fs';
import * as os from 'node:os';
import { alive } from '../fsutil.js';

export interface DecodeLock {
  release(): void;
}

/** The holder of a lock file, or null when it is gone or stale (its process on this machine ended). */
function holder(lock: string): { pid: number; host: string } | null {
  let text: string;
  try {
    text = fs.readFileSync(lock, 'utf8');
  } catch {
    return null;
  }
  const [pidText, host = ''] = text.split(' ');
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || pid <= 0) {
    // being written (held), unless it was left empty long ago by a process killed right after creating it
    let mtime: number;
    try {
      mtime = fs.statSync(lock).mtimeMs;
    } catch {
      return null;
    }
    return Date.now() - mtime > 10_000 ? null : { pid: 0, host };
  }
  if (host.trim() === os.hostname() && !alive(pid)) return null;
  return { pid, host: host.trim() };
}

/**
 * Takes the lock, waiting while another live process holds it. `onWait` is told once whom it
 * waits for. Resolves to null when the lock cannot be made at all (a read-only cache folder: then
 * there is no cache to share either).
 */
export async function acquireDecodeLock(lock: string, onWait: (pid: number) => void, pollMs = 500): Promise<DecodeLock | null> {
  let told = false;
  for (;;) {
    try {
      const fd = fs.openSync(lock, 'wx');
      fs.writeSync(fd, `${process.pid} ${os.hostname()}`);
      fs.closeSync(fd);
      return {
        release() {
          try {
            fs.rmSync(lock, { force: true });
          } catch {
            // a lock left behind is stale once this process ends
          }
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') return null;
    }
    const h = holder(lock);
    if (!h) {
      try {
        fs.rmSync(lock, { force: true });
      } catch {
        return null;
      }
      continue;
    }
    // a lock still empty (its holder between the create and the write) is waited for, and the
    // holder named once its pid is there: never "process 0"
    if (!told && h.pid > 0) {
      told = true;
      onWait(h.pid);
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
