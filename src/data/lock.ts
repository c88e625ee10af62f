// One decode per cache file at a time on a machine: data-parallel ranks (and any commands started
// together) that find no cache all call loadDataset at once, and without a lock each would decode
// the whole split (15.7 GB for ImageNet 64) beside the others. The first takes `<cache>.lock`
// (created exclusively, holding its pid); the others wait for it to go, then open the cache it
// wrote. A lock whose process is gone (killed mid-decode) is taken over.
import * as fs from 'node:fs';
import * as os from 'node:os';
import { alive } from '../fsutil.js';

export interface DecodeLock {
  /** Removes the lock file if it is still this process's. */
  release(): void;
}

/** A lock file as read: its text and modification time, or null when there is none. */
export interface LockFile { text: string; mtimeMs: number }

function readLock(lock: string): LockFile | null {
  try {
    const mtimeMs = fs.statSync(lock).mtimeMs;
    return { text: fs.readFileSync(lock, 'utf8'), mtimeMs };
  } catch {
    return null;
  }
}

/** The holder of a lock file, or null when it is stale (its process on this machine ended). */
function holder(f: LockFile): { pid: number; host: string } | null {
  const [pidText, host = ''] = f.text.split(' ');
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || pid <= 0) {
    // being written (held), unless it was left empty long ago by a process killed right after creating it
    return Date.now() - f.mtimeMs > 10_000 ? null : { pid: 0, host };
  }
  if (host.trim() === os.hostname() && !alive(pid)) return null;
  return { pid, host: host.trim() };
}

/**
 * Removes the stale lock `judged` (as read when it was found stale). Several waiters can find
 * the same stale lock; the first to take it over may already have made its own lock at that path,
 * so the lock is moved aside under a private name first (a rename: one waiter wins) and put back
 * when what was moved is not the lock judged stale. Exported for its test.
 */
export function removeStaleLock(lock: string, judged: LockFile): void {
  const aside = `${lock}.stale-${process.pid}`;
  try {
    fs.renameSync(lock, aside);
  } catch {
    return; // gone: another waiter took it over
  }
  const moved = readLock(aside);
  if (moved && (moved.text !== judged.text || moved.mtimeMs !== judged.mtimeMs)) {
    try {
      fs.linkSync(aside, lock); // another waiter's new lock: back in its place
    } catch {
      // a third process made one in the instant the lock was aside: the moved lock's holder and
      // that process both decode. Each writes its own temp file and renames it into place
      // (cache.ts), so the cache is whole either way; only the work is done twice.
    }
  }
  fs.rmSync(aside, { force: true });
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
      const mine = `${process.pid} ${os.hostname()}`;
      fs.writeSync(fd, mine);
      fs.closeSync(fd);
      return {
        release() {
          try {
            if (readLock(lock)?.text === mine) fs.rmSync(lock, { force: true }); // only this process's own lock
          } catch {
            // a lock left behind is stale once this process ends
          }
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') return null;
    }
    const f = readLock(lock);
    if (!f) continue; // released meanwhile
    const h = holder(f);
    if (!h) {
      removeStaleLock(lock, f);
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
