/**
 * A real S3 server for tests: a one-machine Ceph RADOS Gateway started by
 * scripts/s3-server.sh (installed with apt-get on first use, ~30 s; started
 * in ~2 s) once per test file, in a temporary folder, and stopped when the
 * test process exits.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { S3Client, CreateBucketCommand } from '@aws-sdk/client-s3';
import { ROOT } from './helpers.js';

export interface S3Server {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
  /** environment for the CLI: the AWS variables */
  env: Record<string, string>;
}

const SCRIPT = path.join(ROOT, 'scripts', 's3-server.sh');
let server: S3Server | undefined;
let dir: string | undefined;

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

/** Start the server (once per process) and return how to reach it. */
export function s3Server(): S3Server {
  if (server) return server;
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'walnut-s3-'));
  process.on('exit', () => {
    if (dir) spawnSync('sh', [SCRIPT, 'stop', dir], { stdio: 'ignore' });
  });
  const r = spawnSync('sh', [SCRIPT, 'start', dir], { encoding: 'utf8', timeout: 300_000 });
  if (r.status !== 0) throw new Error(`scripts/s3-server.sh start failed (exit ${r.status}):\n${r.stdout}\n${r.stderr}`);
  const vars = Object.fromEntries(r.stdout.trim().split('\n').map((l) => l.split('=') as [string, string]));
  server = {
    endpoint: vars.S3_ENDPOINT,
    accessKeyId: vars.AWS_ACCESS_KEY_ID,
    secretAccessKey: vars.AWS_SECRET_ACCESS_KEY,
    region: vars.AWS_REGION,
    env: {
      AWS_ACCESS_KEY_ID: vars.AWS_ACCESS_KEY_ID,
      AWS_SECRET_ACCESS_KEY: vars.AWS_SECRET_ACCESS_KEY,
      AWS_REGION: vars.AWS_REGION,
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      AWS_EC2_METADATA_DISABLED: 'true',
    },
  };
  return server;
}

const clients: S3Client[] = [];

/**
 * A plain SDK client on the test server (to set up and inspect buckets).
 * Closed by `closeClients` (call it in `test.after`): an idle keep-alive
 * connection would keep the test process alive until the server drops it.
 */
export function s3Client(s = s3Server()): S3Client {
  const client = new S3Client({
    endpoint: s.endpoint,
    region: s.region,
    forcePathStyle: true,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    credentials: { accessKeyId: s.accessKeyId, secretAccessKey: s.secretAccessKey },
  });
  clients.push(client);
  return client;
}

/** Close every client made by `s3Client`. */
export function closeClients(): void {
  for (const c of clients.splice(0)) c.destroy();
}

let buckets = 0;

/** Create a new bucket with a unique name and return it. */
export async function newBucket(prefix = 'walnut-test'): Promise<string> {
  const name = `${prefix}-${process.pid}-${++buckets}-${Math.random().toString(36).slice(2, 8)}`;
  const client = s3Client();
  try {
    await client.send(new CreateBucketCommand({ Bucket: name }));
  } finally {
    client.destroy();
  }
  return name;
}
