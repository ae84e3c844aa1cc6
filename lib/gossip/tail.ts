/**
 * Following segment folders as they grow: chokidar (loaded lazily) reports
 * changes; because chokidar drops a second change event of a file within
 * 50 ms of the first, a file that changed is looked at again every `pollMs`
 * until it has been quiet for `quietMs`. The first change is handled at once,
 * what follows within a short window: bursts are batched.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { FSWatcher } from 'chokidar';

export interface FolderWatchOptions {
  /** folders to follow (created when missing) */
  dirs: string[];
  /** a file (maybe) grew or appeared; return true when it had new bytes */
  onFile: (file: string) => boolean;
  /** a file disappeared */
  onRemove?: (file: string) => void;
  onError?: (err: Error) => void;
  pollMs?: number;
  quietMs?: number;
}

export class FolderWatch {
  private watcher: FSWatcher | undefined;
  private readonly active = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly o: FolderWatchOptions) {}

  /** Start watching; resolves when chokidar is ready. */
  async start(): Promise<void> {
    for (const d of this.o.dirs) fs.mkdirSync(d, { recursive: true });
    const { watch } = await import('chokidar');
    const w = watch(this.o.dirs, { ignoreInitial: true, depth: 0, persistent: true, awaitWriteFinish: false });
    this.watcher = w;
    w.on('add', (f: string) => this.touch(f));
    w.on('change', (f: string) => this.touch(f));
    w.on('unlink', (f: string) => {
      this.active.delete(f);
      this.o.onRemove?.(f);
    });
    w.on('error', (e: unknown) => this.o.onError?.(e as Error));
    await new Promise<void>((resolve) => w.once('ready', () => resolve()));
  }

  /** Handle a change of `file` now and follow it for a while. */
  touch(file: string): void {
    if (this.closed) return;
    const f = path.resolve(file);
    this.run(f);
    this.active.set(f, Date.now());
    this.schedule();
  }

  private run(file: string): boolean {
    try {
      return this.o.onFile(file);
    } catch (err) {
      this.o.onError?.(err as Error);
      return false;
    }
  }

  private schedule(): void {
    if (this.timer || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const t = Date.now();
      for (const [f, last] of [...this.active]) {
        if (this.run(f)) this.active.set(f, t);
        else if (t - last > (this.o.quietMs ?? 80)) this.active.delete(f);
      }
      if (this.active.size > 0) this.schedule();
    }, this.o.pollMs ?? 5);
  }

  /** Look at every file of the folders (a safety net for lost events). */
  sweep(): void {
    for (const d of this.o.dirs) {
      let names: string[] = [];
      try {
        names = fs.readdirSync(d);
      } catch {
        continue;
      }
      for (const n of names) if (this.run(path.join(d, n))) this.touch(path.join(d, n));
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.watcher?.close();
  }
}
