// A fresh file system for a bench part: an ext4 with a journal (as on the
// Raspberry Pis walnut runs on), made on a loop device over an image file, so
// that figures do not depend on what earlier parts did to the disk.
//
// Why: on this VM the root file system is an ext4 without a journal. There,
// ext4's inode allocator skips every inode freed in the last 60 s
// (`recently_deleted` in fs/ext4/ialloc.c), so creating files right after a
// part deleted 100 k of them costs up to 4× more kernel CPU, and figures of a
// part swung by 2× with what ran before it. A fresh journaled ext4 per part
// (data=ordered, the default) is what a Pi's root is.
//
//   const f = freshFileSystem('compact-full', { bytes: 6e9, inodes: 800_000 });
//   // f.dir: an empty folder on it; f.kind: what it is, for the figures' details
//   try { ... } finally { f.cleanup(); }
//
// Needs Linux, root, and mkfs.ext4, losetup, mount, umount; else (or when a
// step fails, or with WALNUT_BENCH_FS=tmpdir) it falls back to a fresh folder
// under WALNUT_BENCH_TMP or os.tmpdir(), as makeTempRoot() does, and says so
// in `kind`. WALNUT_BENCH_KEEP keeps it mounted and prints where.
//
// Nothing leaks: cleanup() unmounts (retrying while busy, `umount -l` last),
// detaches the loop device and removes the image and mount point; the same is
// done on process exit, SIGINT, SIGTERM and SIGHUP (our child processes are
// sent SIGTERM first so the mount is not busy; the process then exits with
// 128 + the signal's number, running its 'exit' handlers). A run killed with SIGKILL
// leaves its image folder (`walnut-bench-fs-*`, with an `owner` file holding
// the pid); the next freshFileSystem() call cleans such folders whose owner is
// gone (a kept one has no `owner` file and stays).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { log } from './report.mjs';

const GB = 1e9;
/** Smallest image and inode count made (mkfs.ext4 and its journal fit easily). */
const MIN_BYTES = 256e6;
const MIN_INODES = 16_384;
const PREFIX = 'walnut-bench-fs-';

/** File systems made by this process and not cleaned up yet. */
const live = new Set();

/**
 * A fresh file system (see the top of this file). `bytes`: size of the image;
 * `inodes`: inodes to make (mkfs -N; at most one per 4 KiB). Returns
 * { dir, kind, cleanup(), loop?: { device, image, mountpoint } }.
 */
export function freshFileSystem(name, { bytes = GB, inodes = 100_000 } = {}) {
  if (!(bytes > 0) || !(inodes > 0)) throw new Error(`freshFileSystem(${name}): bytes and inodes must be positive numbers, got ${bytes} and ${inodes}`);
  const base = process.env.WALNUT_BENCH_TMP || os.tmpdir();
  fs.mkdirSync(base, { recursive: true });
  const why = loopUnavailable();
  if (!why) {
    sweepStale(base);
    try {
      return loopFileSystem(base, name, bytes, inodes);
    } catch (e) {
      log(`fresh file system for ${name}: ${e.message}; falling back to a folder under ${base}`);
    }
  } else if (process.env.WALNUT_BENCH_FS !== 'tmpdir') log(`fresh file system for ${name}: ${why}; using a folder under ${base}`);
  return tmpdirFileSystem(base, name);
}

/** Why a loop-device file system cannot be made here, or '' when it can. */
function loopUnavailable() {
  if (process.env.WALNUT_BENCH_FS === 'tmpdir') return 'WALNUT_BENCH_FS=tmpdir';
  if (process.env.WALNUT_BENCH_FS && process.env.WALNUT_BENCH_FS !== 'ext4') return `unknown WALNUT_BENCH_FS=${process.env.WALNUT_BENCH_FS} (ext4 or tmpdir)`;
  if (process.platform !== 'linux') return `not Linux (${process.platform})`;
  if (process.getuid?.() !== 0) return 'not running as root (losetup and mount need it)';
  const missing = ['mkfs.ext4', 'losetup', 'mount', 'umount'].filter((t) => !tool(t));
  if (missing.length) return `${missing.join(', ')} not found`;
  return '';
}

function loopFileSystem(base, name, bytes, inodes) {
  bytes = Math.max(MIN_BYTES, Math.round(bytes / 4096) * 4096);
  inodes = Math.min(Math.floor(bytes / 4096), Math.max(MIN_INODES, Math.round(inodes)));
  const work = fs.mkdtempSync(path.join(base, `${PREFIX}${name}-`));
  fs.writeFileSync(path.join(work, 'owner'), `${process.pid}\n`);
  const image = path.join(work, 'ext4.img');
  const mountpoint = path.join(work, 'mnt');
  const t0 = Date.now();
  const entry = { work, image, mountpoint, device: undefined, mounted: false, done: false };
  live.add(entry);
  try {
    // The image is allocated up front (no extents allocated on the host file
    // system during a timed run); mkfs is told not to discard (which would
    // punch the allocation out again).
    if (run('fallocate', ['-l', String(bytes), image]).status !== 0) {
      const st = fs.statfsSync(work);
      if (Number(st.bavail) * Number(st.bsize) < bytes) throw new Error(`only ${round1((Number(st.bavail) * Number(st.bsize)) / GB)} GB free under ${base} for a ${round1(bytes / GB)} GB image`);
      log(`fresh file system for ${name}: fallocate failed; making a sparse image instead`);
      fs.rmSync(image, { force: true });
      fs.writeFileSync(image, '');
      fs.truncateSync(image, bytes);
    }
    let att = run('losetup', ['--direct-io=on', '--find', '--show', image]);
    entry.device = att.stdout.trim() || undefined;
    if (att.status !== 0 || !entry.device) {
      detachAll(image);
      log(`fresh file system for ${name}: losetup --direct-io=on refused (${oneLine(att.stderr)}); attaching without direct I/O`);
      att = run('losetup', ['--find', '--show', image]);
      entry.device = att.stdout.trim() || undefined;
      if (att.status !== 0 || !entry.device) throw new Error(`losetup --find --show ${image} failed: ${oneLine(att.stderr)}`);
    }
    // Inode tables and journal written now (no ext4lazyinit thread writing them during a timed run).
    const mk = run('mkfs.ext4', ['-q', '-F', '-N', String(inodes), '-E', 'lazy_itable_init=0,lazy_journal_init=0,nodiscard', entry.device]);
    if (mk.status !== 0) throw new Error(`mkfs.ext4 -N ${inodes} ${entry.device} failed: ${oneLine(mk.stderr)}`);
    fs.mkdirSync(mountpoint);
    const mt = run('mount', ['-t', 'ext4', entry.device, mountpoint]);
    if (mt.status !== 0) throw new Error(`mount ${entry.device} ${mountpoint} failed: ${oneLine(mt.stderr)}`);
    entry.mounted = true;
    const dir = path.join(mountpoint, 'data'); // lost+found sits at the root
    fs.mkdirSync(dir);
    const kind = describeLoop(entry.device, mountpoint, bytes, dir);
    log(`fresh file system for ${name}: ${entry.device} on ${mountpoint} in ${Date.now() - t0} ms`);
    return { dir, kind, loop: { device: entry.device, image, mountpoint }, cleanup: () => release(entry) };
  } catch (e) {
    release(entry, { quiet: true, keep: false });
    throw e;
  }
}

function tmpdirFileSystem(base, name) {
  const dir = fs.mkdtempSync(path.join(base, `walnut-bench-${name}-`));
  const entry = { work: dir, done: false, tmpdir: true };
  live.add(entry);
  return { dir, kind: `tmpdir: ${dir} (${describePath(dir)})`, cleanup: () => release(entry) };
}

/**
 * Undo what was made: unmount, detach, remove. Idempotent. With
 * WALNUT_BENCH_KEEP (and not `keep: false`) only says where it is.
 */
function release(entry, { quiet = false, keep = Boolean(process.env.WALNUT_BENCH_KEEP) } = {}) {
  if (entry.done) return;
  entry.done = true;
  live.delete(entry);
  if (keep) {
    if (entry.tmpdir) process.stderr.write(`  kept ${entry.work}\n`);
    else {
      fs.rmSync(path.join(entry.work, 'owner'), { force: true }); // not swept by later runs
      process.stderr.write(`  kept ${entry.mountpoint} mounted (${entry.device}, image ${entry.image}); remove with: umount ${entry.mountpoint} && losetup -d ${entry.device} && rm -r ${entry.work}\n`);
    }
    return;
  }
  const problems = [];
  if (entry.mounted) {
    const err = unmount(entry.mountpoint);
    if (err) problems.push(err);
  }
  if (entry.image) detachAll(entry.image);
  try {
    fs.rmSync(entry.work, { recursive: true, force: true });
  } catch (e) {
    problems.push(`could not remove ${entry.work}: ${e.message}`);
  }
  if (problems.length && !quiet) log(`fresh file system cleanup: ${problems.join('; ')}`);
}

/** umount, retrying while busy; `umount -l` as a last resort. Returns a problem or ''. */
function unmount(mountpoint) {
  let last = '';
  for (let i = 0; i < 10; i++) {
    const u = run('umount', [mountpoint]);
    if (u.status === 0 || !isMounted(mountpoint)) return '';
    last = oneLine(u.stderr);
    if (!/busy/i.test(last)) break;
    sleep(300);
  }
  const lazy = run('umount', ['-l', mountpoint]);
  if (lazy.status === 0 || !isMounted(mountpoint)) return `umount ${mountpoint}: ${last}; detached it lazily (umount -l)`;
  return `umount -l ${mountpoint} failed: ${oneLine(lazy.stderr)}`;
}

/** Detach every loop device backed by `image` (a busy one is detached when its last user goes). */
function detachAll(image) {
  const j = run('losetup', ['-j', image]);
  for (const line of (j.stdout ?? '').split('\n')) {
    const dev = line.split(':')[0].trim();
    if (dev.startsWith('/dev/')) run('losetup', ['-d', dev]);
  }
}

function isMounted(mountpoint) {
  return mounts().some((m) => m.target === mountpoint);
}

/** Image folders of processes that are gone (killed with SIGKILL): unmount, detach, remove. */
function sweepStale(base) {
  let names;
  try {
    names = fs.readdirSync(base).filter((n) => n.startsWith(PREFIX));
  } catch {
    return;
  }
  for (const n of names) {
    const work = path.join(base, n);
    let pid;
    try {
      pid = Number(fs.readFileSync(path.join(work, 'owner'), 'utf8'));
    } catch {
      continue;
    }
    if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid || alive(pid)) continue;
    log(`fresh file system: cleaning up ${work}, left by process ${pid} (gone)`);
    const mountpoint = path.join(work, 'mnt');
    release({ work, image: path.join(work, 'ext4.img'), mountpoint, mounted: isMounted(mountpoint), done: false }, { keep: false });
  }
}

/** Whether a process runs (a zombie, exited but not reaped yet, does not). */
function running(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat[stat.lastIndexOf(')') + 2] !== 'Z';
  } catch {
    return false;
  }
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return e.code === 'EPERM';
  }
}

// ------------------------------------------------------------ describing

/** e.g. `ext4 with journal (data=ordered), fresh, on a loop device with direct I/O (6.0 GB image, 800 k inodes)`. */
function describeLoop(device, mountpoint, bytes, dir) {
  const dev = path.basename(device);
  const m = mounts().find((x) => x.target === mountpoint);
  const type = m?.type ?? 'ext4';
  const opts = ext4Options(dev) ?? m?.options ?? '';
  const data = /(?:^|[\s,])data=(\w+)/.exec(opts)?.[1];
  const journal = hasJournal(dev);
  let dio;
  try {
    dio = fs.readFileSync(`/sys/block/${dev}/loop/dio`, 'utf8').trim() === '1';
  } catch {
    /* unknown */
  }
  const st = fs.statfsSync(dir);
  const files = Number(st.files);
  const inodes = files >= 1e6 ? `${round1(files / 1e6)} M` : `${Math.round(files / 1e3)} k`;
  const j = journal === undefined ? 'journal unknown' : journal ? 'with journal' : 'without journal';
  const io = dio === undefined ? '' : dio ? ' with direct I/O' : ' without direct I/O (buffered: pages cached twice)';
  return `${type} ${j}${data ? ` (data=${data})` : ''}, fresh, on a loop device${io} (${(bytes / GB).toFixed(1)} GB image, ${inodes} inodes)`;
}

/** `<fs type>, journal: yes|no` (journal only said for ext4) for the file system holding `p`. */
export function describePath(p) {
  const real = fs.realpathSync(p);
  const m = mounts()
    .filter((x) => real === x.target || real.startsWith(x.target.endsWith('/') ? x.target : x.target + '/'))
    .sort((a, b) => b.target.length - a.target.length)[0];
  if (!m) return 'file system unknown';
  let out = `${m.type} on ${m.source}`;
  if (m.type === 'ext4' || m.type === 'ext3') {
    const dev = blockDeviceName(real);
    const journal = dev ? hasJournal(dev) : undefined;
    out += `, journal: ${journal === undefined ? 'unknown' : journal ? 'yes' : 'no'}`;
    const data = /(?:^|[\s,])data=(\w+)/.exec((dev && ext4Options(dev)) ?? '')?.[1];
    if (journal && data) out += ` (data=${data})`;
  }
  return out;
}

/** The block device holding `p` (`vda`, `loop3`), from its st_dev through /sys/dev/block. */
function blockDeviceName(p) {
  const d = fs.statSync(p).dev;
  const major = (d >> 8) & 0xfff;
  const minor = (d & 0xff) | ((d >> 12) & 0xfff00);
  try {
    return path.basename(fs.readlinkSync(`/sys/dev/block/${major}:${minor}`));
  } catch {
    return undefined;
  }
}

/** Whether jbd2 runs a journal for this ext4 device; undefined when /proc does not say. */
function hasJournal(dev) {
  try {
    return fs.readdirSync('/proc/fs/jbd2').some((n) => n === `${dev}-8` || n.startsWith(`${dev}:`));
  } catch {
    return undefined;
  }
}

function ext4Options(dev) {
  try {
    return fs.readFileSync(`/proc/fs/ext4/${dev}/options`, 'utf8').split('\n').join(',');
  } catch {
    return undefined;
  }
}

function mounts() {
  try {
    return fs
      .readFileSync('/proc/self/mounts', 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => {
        const [source, target, type, options] = l.split(' ').map((x) => x.replace(/\\(\d{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8))));
        return { source, target, type, options };
      });
  } catch {
    return [];
  }
}

// --------------------------------------------------------------- helpers

/** The absolute path of a tool in PATH, /usr/sbin or /sbin; '' when missing. */
function tool(name) {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin', '/usr/bin', '/bin'].filter(Boolean);
  for (const d of dirs) {
    const f = path.join(d, name);
    try {
      fs.accessSync(f, fs.constants.X_OK);
      return f;
    } catch {
      /* next */
    }
  }
  return '';
}

function run(name, args) {
  const r = spawnSync(tool(name) || name, args, { encoding: 'utf8' });
  if (r.error) return { status: -1, stdout: '', stderr: r.error.message };
  return r;
}

function oneLine(s) {
  return String(s ?? '').trim().split('\n').filter(Boolean).slice(-2).join(' ') || 'no message';
}

function round1(x) {
  return Math.round(x * 10) / 10;
}

function sleep(ms) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

// ------------------------------------------------- exit and signal handling

/** Our descendants (deepest first), from /proc/<pid>/task/<pid>/children. */
function descendants(pid = process.pid) {
  const out = [];
  const walk = (p) => {
    let kids = [];
    try {
      kids = fs.readFileSync(`/proc/${p}/task/${p}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    } catch {
      /* gone */
    }
    for (const k of kids) {
      walk(k);
      out.push(k);
    }
  };
  walk(pid);
  return out;
}

function releaseAll() {
  for (const entry of [...live]) {
    try {
      release(entry);
    } catch (e) {
      process.stderr.write(`  fresh file system cleanup of ${entry.work} failed: ${e.message}\n`);
    }
  }
}

process.on('exit', releaseAll);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    if (live.size) {
      process.stderr.write(`  ${sig}: cleaning up ${live.size} bench file system${live.size === 1 ? '' : 's'}\n`);
      // Our children (a walnut run, the floor) may have their cwd or files on
      // the mount: stop them first so it is not busy.
      const kids = descendants();
      for (const pid of kids) {
        try {
          process.kill(pid, 'SIGTERM');
        } catch {
          /* gone */
        }
      }
      for (let i = 0; i < 20 && kids.some(running); i++) sleep(100);
      releaseAll();
    }
    // exit (128 + signal number, as a shell reports it) rather than die of
    // the signal, so 'exit' handlers run (makeTempRoot's folders are removed)
    process.exit(128 + (os.constants.signals[sig] ?? 0));
  });
}
