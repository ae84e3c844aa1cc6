// The machine a benchmark ran on: CPU model, cores, memory, the disk under the
// data directory, Node version, OS and date. Every figure in bench/README.md
// and bench/results.json is printed next to this description.
import os from 'node:os';
import fs from 'node:fs';
import { execFileSync } from 'node:child_process';

function sh(cmd, args) {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return '';
  }
}

/**
 * The disk holding `dir`: device, file system type, size, free space and
 * whether it is rotational or an SSD (from /sys/block/<dev>/queue/rotational).
 */
export function describeDisk(dir = os.tmpdir()) {
  const df = sh('df', ['-PT', dir]).split('\n')[1]?.split(/\s+/) ?? [];
  const [device = '', fsType = '', blocks = '0', , avail = '0', , mount = ''] = df;
  const base = device.replace(/^\/dev\//, '').replace(/p?\d+$/, '');
  let rotational;
  let model = '';
  try {
    rotational = fs.readFileSync(`/sys/block/${base}/queue/rotational`, 'utf8').trim() === '1';
  } catch {
    rotational = undefined;
  }
  try {
    model = fs.readFileSync(`/sys/block/${base}/device/model`, 'utf8').trim();
  } catch {
    model = base.startsWith('vd') ? 'virtio block device' : base.startsWith('nvme') ? 'NVMe' : '';
  }
  const gb = (k) => Math.round((Number(k) * 1024) / 1e9);
  return {
    device,
    fsType,
    mount,
    sizeGB: gb(blocks),
    freeGB: gb(avail),
    kind: rotational === undefined ? 'unknown' : rotational ? 'rotational (as the kernel reports it)' : 'non-rotational',
    model,
  };
}

/** A JSON description of this machine, for results.json and the README. */
export function describeMachine({ dataDir = os.tmpdir() } = {}) {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model?.trim() || 'unknown',
    cores: cpus.length,
    cpuMHz: cpus[0]?.speed || undefined,
    memoryGB: Math.round((os.totalmem() / 1e9) * 10) / 10,
    disk: describeDisk(dataDir),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    virtualized: detectVirt(),
    node: process.version,
    date: new Date().toISOString(),
  };
}

function detectVirt() {
  const v = sh('systemd-detect-virt', []);
  if (v && v !== 'none') return v;
  try {
    if (/hypervisor/.test(fs.readFileSync('/proc/cpuinfo', 'utf8'))) return 'yes (hypervisor flag)';
  } catch {
    /* not Linux */
  }
  return 'unknown';
}

/** One line, for summaries: "AMD EPYC, 2 cores, 24.1 GB RAM, virtio block device ext4, Node v20.20.2". */
export function machineLine(m) {
  return `${m.cpu}, ${m.cores} cores, ${m.memoryGB} GB RAM, ${m.disk.model || m.disk.device} (${m.disk.fsType}, ${m.disk.kind}), ${m.os}, Node ${m.node}`;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(JSON.stringify(describeMachine(), null, 2));
}
