import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHmac, randomBytes } from 'node:crypto';
import { MAX_DATAGRAM, ReplayGuard, TAG_BYTES, dataCapacity, decodeDatagram, encodeDatagram, heartbeats, keyFingerprint, parseKey, segmentOrigin, type Message } from '../lib/gossip/protocol.js';
import { chunkRecords } from '../lib/gossip/daemon.js';
import { parseHostPort } from '../lib/gossip/peers.js';
import { encodeRecord, splitRecords } from '../formats/usv.js';
import { FormatError } from '../lib/errors.js';

const key = Buffer.alloc(32, 7);
const other = Buffer.alloc(32, 9);
const env = { node: 'pi-01', epoch: 1_700_000_000, seq: 42 };
const rec = (i: number, value = `"v${i}"`) => encodeRecord({ timestamp: `2026-11-21T10:00:${String(i % 60).padStart(2, '0')}.000Z`, node: 'pi-02', target: 'companies/acme', field: `f${i}`, value, causality: 'hlc:0' });

test('data, heartbeat and request round trip under the key', () => {
  const messages: Message[] = [
    { type: 'data', segment: '20261121_pi-02.usv', offset: 12345, total: 99999, whole: true, bytes: Buffer.from(rec(1)) },
    { type: 'heartbeat', reply: true, entries: [{ segment: '20261121_pi-02.usv', length: 2 ** 40, count: 7 }, { segment: '20261120_pi-01.usv', length: 0, count: 0 }] },
    { type: 'heartbeat', reply: false, entries: [] },
    { type: 'request', segment: '20261121_pi-03.usv', from: 10, to: 0 },
  ];
  for (const m of messages) {
    const buf = encodeDatagram(env, m, key);
    assert.ok(buf.length <= MAX_DATAGRAM);
    const r = decodeDatagram(buf, [other, key]);
    assert.ok(r.ok, JSON.stringify(r));
    if (!r.ok) continue;
    assert.is(r.key, 1, 'verified by the second (accepted) key');
    assert.equal(r.datagram, { ...env, message: m });
  }
});

test('a flipped bit anywhere makes the datagram unauthenticated or malformed', () => {
  const buf = encodeDatagram(env, { type: 'data', segment: '20261121_pi-02.usv', offset: 0, total: 0, whole: true, bytes: Buffer.from(rec(2)) }, key);
  for (let i = 0; i < buf.length; i++) {
    const bad = Buffer.from(buf);
    bad[i] ^= 0x01;
    const r = decodeDatagram(bad, [key]);
    assert.not.ok(r.ok, `byte ${i}`);
    if (!r.ok) assert.ok(r.reason === 'unauthenticated' || r.reason === 'malformed', r.reason);
  }
});

test('wrong key, truncation, oversize and garbage are refused with a reason', () => {
  const buf = encodeDatagram(env, { type: 'request', segment: '20261121_pi-02.usv', from: 0, to: 0 }, key);
  const r1 = decodeDatagram(buf, [other]);
  assert.equal(r1.ok ? 'ok' : r1.reason, 'unauthenticated');
  for (let n = 0; n < buf.length; n++) {
    const r = decodeDatagram(buf.subarray(0, n), [key]);
    assert.not.ok(r.ok, `truncated to ${n}`);
  }
  assert.equal((decodeDatagram(Buffer.alloc(MAX_DATAGRAM + 1), [key]) as { reason: string }).reason, 'oversized');
  assert.equal((decodeDatagram(Buffer.from('hello world, this is not walnut at all, no no no'), [key]) as { reason: string }).reason, 'malformed');
  // A well-signed body that does not parse is malformed, not accepted.
  const body = Buffer.concat([Buffer.from('WG'), Buffer.from([1, 9, 5]), Buffer.from('pi-01'), Buffer.alloc(8)]);
  const signed = Buffer.concat([body, createHmac('sha256', key).update(body).digest()]);
  const r2 = decodeDatagram(signed, [key]);
  assert.equal(r2.ok ? 'ok' : r2.reason, 'malformed');
});

test('an oversized message cannot be encoded', () => {
  assert.throws(
    () => encodeDatagram(env, { type: 'data', segment: '20261121_pi-02.usv', offset: 0, total: 0, whole: false, bytes: Buffer.alloc(MAX_DATAGRAM) }, key),
    (e: unknown) => e instanceof FormatError && e.code === 'EGOSSIPSIZE',
  );
  const cap = dataCapacity('pi-01', '20261121_pi-02.usv');
  const ok = encodeDatagram(env, { type: 'data', segment: '20261121_pi-02.usv', offset: 0, total: 0, whole: false, bytes: Buffer.alloc(cap) }, key);
  assert.is(ok.length, MAX_DATAGRAM);
  assert.ok(cap > 1200, `room for data: ${cap}`);
  assert.throws(() => encodeDatagram(env, { type: 'request', segment: '../../etc/passwd', from: 0, to: 0 }, key));
  assert.throws(() => encodeDatagram({ ...env, node: 'Bad Node' }, { type: 'heartbeat', reply: false, entries: [] }, key));
});

test('segment names must be journal segments of valid node ids', () => {
  assert.is(segmentOrigin('20261121_pi-02.usv'), 'pi-02');
  for (const bad of ['20261121_PI.usv', '2026112_pi.usv', '20261121_pi/../x.usv', '20261121_pi_01.usv', 'x.usv', '20261121_.usv']) assert.is(segmentOrigin(bad), undefined, bad);
});

test('heartbeats split a long summary into datagrams that fit', () => {
  const entries = Array.from({ length: 300 }, (_, i) => ({ segment: `20261121_node-${String(i).padStart(3, '0')}.usv`, length: i * 1000, count: i }));
  const msgs = heartbeats('pi-01', entries, true);
  assert.ok(msgs.length > 1);
  assert.equal(msgs.flatMap((m) => m.entries), entries);
  for (const m of msgs) assert.ok(encodeDatagram(env, m, key).length <= MAX_DATAGRAM);
});

test('replay guard: each (epoch, seq) once, old epochs and too-old sequence numbers refused', () => {
  const g = new ReplayGuard();
  assert.ok(g.accept('a', 5, 1));
  assert.not.ok(g.accept('a', 5, 1));
  assert.ok(g.accept('a', 5, 3));
  assert.ok(g.accept('a', 5, 2), 'out of order within the window');
  assert.not.ok(g.accept('a', 5, 2));
  assert.ok(g.accept('a', 5, 3000));
  assert.not.ok(g.accept('a', 5, 3000 - ReplayGuard.WINDOW), 'below the window');
  assert.ok(g.accept('a', 5, 3000 - ReplayGuard.WINDOW + 1));
  assert.not.ok(g.accept('a', 4, 999999), 'older epoch');
  assert.ok(g.accept('a', 6, 1), 'newer epoch (restart)');
  assert.not.ok(g.accept('a', 5, 4000));
  assert.ok(g.accept('b', 1, 1), 'senders are independent');
  // Restored from persisted marks: nothing at or below the mark is new.
  const h = new ReplayGuard(g.marks());
  assert.not.ok(h.accept('a', 6, 1));
  assert.ok(h.accept('a', 6, 2));
  assert.not.ok(h.accept('b', 1, 1));
});

test('chunking packs whole records and cuts a big record into pieces', () => {
  const small = Buffer.from(Array.from({ length: 30 }, (_, i) => rec(i)).join(''));
  const chunks = chunkRecords(small, 1000, 400);
  assert.ok(chunks.length > 1);
  assert.ok(chunks.every((c) => c.whole && c.bytes.length <= 400));
  assert.equal(Buffer.concat(chunks.map((c) => c.bytes)), small);
  let pos = 1000;
  for (const c of chunks) {
    assert.is(c.offset, pos);
    pos += c.bytes.length;
    assert.is(splitRecords(c.bytes, 0, true).used, c.bytes.length, 'chunk ends at a record boundary');
  }
  const big = Buffer.from(rec(1, JSON.stringify('x'.repeat(5000))));
  for (const cap of [100, 1000, big.length - 1, big.length - 2]) {
    const parts = chunkRecords(Buffer.concat([big, small]), 0, cap);
    assert.equal(Buffer.concat(parts.map((c) => c.bytes)), Buffer.concat([big, small]));
    const pieces = parts.filter((c) => !c.whole);
    assert.ok(pieces.length >= 2, `cap ${cap}`);
    assert.ok(pieces[pieces.length - 1].bytes.length >= 2, 'no lone newline');
    assert.ok(parts.every((c) => c.bytes.length <= cap));
  }
});

test('keys: 64 hex digits; fingerprints are stable and short', () => {
  const hex = randomBytes(32).toString('hex');
  assert.equal(parseKey(hex), Buffer.from(hex, 'hex'));
  for (const bad of ['', 'abc', 'zz'.repeat(32), hex + '0']) assert.throws(() => parseKey(bad), (e: unknown) => e instanceof FormatError && e.code === 'EGOSSIPKEY');
  assert.is(keyFingerprint(key), keyFingerprint(Buffer.from(key)));
  assert.is(keyFingerprint(key).length, 8);
  assert.is.not(keyFingerprint(key), keyFingerprint(other));
  assert.is(TAG_BYTES, 32);
});

test('host:port parsing', () => {
  assert.equal(parseHostPort('10.0.0.2:9000', 9999), { host: '10.0.0.2', port: 9000 });
  assert.equal(parseHostPort('pi-02.local', 9999), { host: 'pi-02.local', port: 9999 });
  assert.equal(parseHostPort('[::1]:7', 9999), { host: '::1', port: 7 });
  for (const bad of ['', 'a b', 'x:0', 'x:70000', 'x:y']) assert.is(parseHostPort(bad, 9999), undefined, bad);
});

test.run();
