/**
 * The gossip daemon's pidfile, `.walnut/gossip.pid`: one daemon per data
 * directory. It is created exclusively; a pidfile whose process is gone (or
 * is not a walnut gossip daemon: the pid was reused after a reboot) is stale
 * and taken over. The file holds the pid and a newline, as `kill $(cat …)`
 * and systemd's `PIDFile=` expect; the port is in the status file.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { LockHeldError } from '../errors.js';
import type { Repo } from '../repo.js';

export const PIDFILE = 'gossip.pid';

export interface PidInfo {
  pid: number;
}

/** The pidfile's path. */
export function pidfilePath(repo: Pick<Repo, 'dir'>): string {
  return path.join(repo.dir, PIDFILE);
}

/** The pidfile's content, or undefined when there is none (or it is unreadable). */
export function readPidfile(repo: Pick<Repo, 'dir'>): PidInfo | undefined {
  let text: string;
  try {
    text = fs.readFileSync(pidfilePath(repo), 'utf8');
  } catch {
    return undefined;
  }
  const pid = Number(text.trim());
  return /^\d+$/.test(text.trim()) && Number.isSafeInteger(pid) && pid > 0 ? { pid } : undefined;
}

/**
 * True when `pid` is a running walnut gossip daemon (on Linux, its command
 * line has the word `gossip`; elsewhere any live process counts).
 */
export function daemonAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    const args = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return args.includes('gossip');
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ENOENT' || !fs.existsSync('/proc/self');
  }
}

/**
 * Create the pidfile for this process, taking over a stale one.
 *
 * @param repo - the repository
 * @param info - the pid to write
 * @returns `release()` (removes the file if it is still ours) and the stale pidfile taken over, if any
 * @throws LockHeldError `EGOSSIPRUNNING` when a live daemon holds it
 * @example const lock = acquirePidfile(repo, { pid: process.pid, started: new Date().toISOString() }); try { ... } finally { lock.release() }
 */
export function acquirePidfile(repo: Repo, info: PidInfo): { release: () => void; stale?: PidInfo } {
  const file = pidfilePath(repo);
  let stale: PidInfo | undefined;
  for (let attempt = 0; attempt < 5; attempt++) {
    let fd: number;
    try {
      fd = fs.openSync(file, 'wx', 0o644);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      let cur = readPidfile(repo);
      if (!cur) {
        // Just created by another starter that has not written it yet?
        sleepMs(100);
        cur = readPidfile(repo);
      }
      if (cur && cur.pid !== process.pid && daemonAlive(cur.pid)) {
        throw new LockHeldError(`a gossip daemon already runs for '${repo.root}' (pid ${cur.pid})`, { pid: cur.pid, pidfile: file }, [
          "stop it with 'walnut gossip stop', or check it with 'walnut gossip status'",
        ]);
      }
      stale = cur ?? { pid: 0 };
      // Take over: only one of several starters wins the rename.
      try {
        fs.renameSync(file, `${file}.stale-${randomBytes(4).toString('hex')}`);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
      for (const name of fs.readdirSync(repo.dir)) if (name.startsWith(`${PIDFILE}.stale-`)) fs.rmSync(path.join(repo.dir, name), { force: true });
      continue;
    }
    try {
      fs.writeSync(fd, `${info.pid}\n`);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    return {
      stale,
      release: () => {
        const cur = readPidfile(repo);
        if (cur?.pid === info.pid) fs.rmSync(file, { force: true });
      },
    };
  }
  throw new LockHeldError(`cannot take the gossip pidfile '${file}': other daemons keep starting`, { pidfile: file });
}

function sleepMs(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
