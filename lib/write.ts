/**
 * Writing records: `set`, `unset` and batch mode. Values are checked, stamped
 * with the node's clock and appended to the node's segment. Never takes a lock.
 */
import { StringDecoder } from 'node:string_decoder';
import { checkField, checkTarget, encodeValue, MAX_RECORD_BYTES, type JournalRecord } from '../formats/usv.js';
import { FormatError } from './errors.js';
import { Clock, type ClockOptions } from './clock.js';
import { SegmentWriter, type FsyncPolicy } from './journal.js';
import type { Repo } from './repo.js';

/** One field change to write; `value` is any JSON value, `null` deletes the field. */
export interface FieldChange {
  target: string;
  field: string;
  value: unknown;
}

// The last target and field checked: batches repeat them record after record.
let lastTarget: string | undefined;
let lastField: string | undefined;

/** Check a change at the public boundary; returns the encoded value unit. */
export function checkChange(change: FieldChange, where = ''): string {
  if (typeof change.target !== 'string') throw new FormatError('ETARGET', `${where}target must be a string`, {});
  if (typeof change.field !== 'string') throw new FormatError('EFIELD', `${where}field must be a string`, {});
  if (change.target !== lastTarget) {
    checkTarget(change.target);
    lastTarget = change.target;
  }
  if (change.field !== lastField) {
    checkField(change.field);
    lastField = change.field;
  }
  const unit = encodeValue(change.value === undefined ? null : change.value);
  if (Buffer.byteLength(unit) > MAX_RECORD_BYTES - 1024) {
    throw new FormatError('ETOOLARGE', `${where}value for ${change.target} ${change.field} is ${Buffer.byteLength(unit)} bytes; a record is at most 1 MiB`, { target: change.target, field: change.field }, [
      'store large content in a file and record its path',
    ]);
  }
  return unit;
}

/**
 * Write field changes as journal records of this node.
 *
 * @param options.repo - the repository
 * @param options.changes - the changes, all checked before anything is written
 * @param options.clock - clock options (wall clock, bound)
 * @param options.fsync - 'always' (default) fsyncs each record
 * @returns the records written
 * @throws FormatError for a bad target, field or value; nothing is written then
 * @example writeChanges({ repo, changes: [{ target: 'companies/acme', field: 'name', value: 'Acme' }] })
 */
export function writeChanges({ repo, changes, clock: clockOptions, fsync = 'always' }: { repo: Repo; changes: FieldChange[]; clock?: ClockOptions; fsync?: FsyncPolicy }): JournalRecord[] {
  const units = changes.map((c) => checkChange(c));
  const clock = Clock.load(repo, clockOptions);
  const writer = new SegmentWriter(repo.wal, fsync);
  const written: JournalRecord[] = [];
  try {
    changes.forEach((c, i) => {
      const { timestamp, causality } = clock.tick();
      const record: JournalRecord = { timestamp, node: repo.node, target: c.target, field: c.field, value: units[i], causality, format: 1 };
      writer.append(record);
      written.push(record);
    });
  } finally {
    writer.close();
  }
  return written;
}

/** A problem with one line of batch input; the rest goes on. */
export interface BatchIssue {
  line: number;
  message: string;
}

/**
 * Batch mode: NDJSON `{"target","field","value"}` lines from a byte stream,
 * appended as one stream (fsynced every MiB and at the end). A bad line is
 * reported and skipped, nothing of it is written.
 *
 * @returns counts of records written and lines refused
 */
export async function writeBatch({ repo, input, clock: clockOptions, onIssue }: { repo: Repo; input: AsyncIterable<Buffer | string>; clock?: ClockOptions; onIssue?: (i: BatchIssue) => void }): Promise<{ written: number; refused: number }> {
  const clock = Clock.load(repo, clockOptions);
  const writer = new SegmentWriter(repo.wal, 'batch');
  let written = 0;
  let refused = 0;
  let lineNo = 0;
  let carry = '';
  const decoder = new StringDecoder('utf8');
  const handle = (line: string) => {
    lineNo++;
    if (line.trim() === '') return;
    try {
      let obj: FieldChange;
      try {
        obj = JSON.parse(line);
      } catch (err) {
        throw new FormatError('EBATCH', `not JSON: ${(err as Error).message}`, {});
      }
      if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) throw new FormatError('EBATCH', `expected an object {"target","field","value"}`, {});
      if (!('value' in obj)) throw new FormatError('EBATCH', `missing "value" (use null to delete a field)`, {});
      const unit = checkChange(obj);
      const { timestamp, causality } = clock.tick();
      writer.append({ timestamp, node: repo.node, target: obj.target, field: obj.field, value: unit, causality });
      written++;
    } catch (err) {
      if (!(err instanceof FormatError)) throw err;
      refused++;
      onIssue?.({ line: lineNo, message: err.message });
    }
  };
  try {
    for await (const chunk of input) {
      const text = carry + (typeof chunk === 'string' ? chunk : decoder.write(chunk));
      let pos = 0;
      for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n', pos)) {
        handle(text.slice(pos, nl));
        pos = nl + 1;
      }
      carry = text.slice(pos);
    }
    carry += decoder.end();
    if (carry !== '') handle(carry);
  } finally {
    writer.close();
  }
  return { written, refused };
}
