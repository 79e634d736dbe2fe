/**
 * Streaming NAR parser and validator. It accepts only the canonical form `nix-store --dump`
 * writes (fixed field order, entries strictly sorted by raw bytes, zero padding, nothing
 * after the root node), like current Nix and stricter than Nix 2.8, so that a NAR that
 * passes re-packs to the same bytes and hash.
 */
import type { HashAlgorithm } from '../core/hash.ts';
import { NarError } from './errors.ts';
import {
  describeBytes,
  encodeStrings,
  invalidNameReason,
  invalidTargetReason,
  MAX_NAME_LENGTH,
  MAX_TARGET_LENGTH,
  NAR_MAGIC,
  paddingLength,
} from './format.ts';
import type { NarDigest } from './nar-hash.ts';
import { tapHash } from './nar-hash.ts';
import { ByteReader } from './reader.ts';

/** Entry names from the root to a node; the root itself is `[]`. */
export type NarPath = readonly Buffer[];

/**
 * What the parser reports, in archive order. A `regular` event is followed by `contents`
 * events carrying exactly `size` bytes (none for an empty file); their chunks are views
 * valid only until the next event is requested.
 */
export type NarEvent =
  | { type: 'directory'; path: NarPath }
  | { type: 'regular'; path: NarPath; executable: boolean; size: number; narOffset: number }
  | { type: 'contents'; chunk: Uint8Array }
  | { type: 'symlink'; path: NarPath; target: Buffer };

/** Longest tag: 'nix-archive-1'; anything longer cannot be a tag. */
const MAX_TAG_LENGTH = NAR_MAGIC.length;
const MAGIC = encodeStrings(NAR_MAGIC);

interface DirectoryFrame {
  path: NarPath;
  previous: Buffer | undefined;
}

async function readPadding(reader: ByteReader, length: number, what: string): Promise<void> {
  const size = paddingLength(length);
  if (size === 0) return;
  const start = reader.offset;
  const bytes = await reader.read(size, `the padding of ${what}`);
  if (bytes.some((byte) => byte !== 0)) throw new NarError(`non-zero padding after ${what}`, start);
}

async function readBytes(reader: ByteReader, limit: number, what: string): Promise<Buffer> {
  const start = reader.offset;
  const length = await reader.readU64(`the length of ${what}`);
  if (length > limit) throw new NarError(`${what} is ${length} bytes long, more than the limit of ${limit}`, start);
  const bytes = Buffer.from(await reader.read(length, what));
  await readPadding(reader, length, what);
  return bytes;
}

/** The tags allowed at one point of the grammar, with the wording for errors computed once. */
class Tags<Tag extends string> {
  readonly wanted: string;
  constructor(readonly tags: readonly Tag[]) {
    this.wanted = tags.map((tag) => `'${tag}'`).join(' or ');
  }
}

const OPEN = new Tags(['(']);
const CLOSE = new Tags([')']);
const TYPE = new Tags(['type']);
const NODE_TYPE = new Tags(['regular', 'directory', 'symlink']);
const REGULAR_FIELD = new Tags(['executable', 'contents']);
const CONTENTS = new Tags(['contents']);
const TARGET = new Tags(['target']);
const ENTRY_OR_CLOSE = new Tags(['entry', ')']);
const NAME = new Tags(['name']);
const NODE = new Tags(['node']);

async function readTag<Tag extends string>(reader: ByteReader, expected: Tags<Tag>): Promise<Tag> {
  const start = reader.offset;
  const length = await reader.readU64(`the length of the tag ${expected.wanted}`);
  if (length > MAX_TAG_LENGTH) throw new NarError(`expected ${expected.wanted}, found a string of ${length} bytes`, start);
  const bytes = await reader.read(length, `the tag ${expected.wanted}`);
  const text = Buffer.from(bytes).toString('latin1');
  const tag = expected.tags.find((known) => known === text);
  if (tag === undefined) throw new NarError(`expected ${expected.wanted}, found ${describeBytes(bytes)}`, start);
  await readPadding(reader, length, `the tag '${tag}'`);
  return tag;
}

/** Parses one node's opening up to its type; returns the type tag. */
async function readNodeType(reader: ByteReader): Promise<'regular' | 'directory' | 'symlink'> {
  await readTag(reader, OPEN);
  await readTag(reader, TYPE);
  return readTag(reader, NODE_TYPE);
}

/** Parses a NAR from any byte stream, validating as it goes; throws NarError with the byte offset. */
export async function* parseNar(source: AsyncIterable<Uint8Array>): AsyncGenerator<NarEvent, void, undefined> {
  const reader = new ByteReader(source);
  try {
    const magic = await reader.read(MAGIC.length, 'the archive magic');
    if (!MAGIC.equals(magic)) throw new NarError(`not a NAR: it does not start with the string '${NAR_MAGIC}'`, 0);

    const stack: DirectoryFrame[] = [];
    let path: NarPath | undefined = [];
    while (path !== undefined) {
      const type = await readNodeType(reader);
      if (type === 'directory') {
        stack.push({ path, previous: undefined });
        yield { type, path };
      } else {
        if (type === 'regular') {
          const executable = (await readTag(reader, REGULAR_FIELD)) === 'executable';
          if (executable) {
            const markerStart = reader.offset;
            const marker = await readBytes(reader, MAX_TAG_LENGTH, 'the executable marker');
            if (marker.length !== 0) throw new NarError(`the executable marker must be empty, found ${describeBytes(marker)}`, markerStart);
            await readTag(reader, CONTENTS);
          }
          // readU64 refuses sizes beyond 2^53 - 1: no real file is that large.
          const size = await reader.readU64('the file size');
          yield { type, path, executable, size, narOffset: reader.offset };
          for await (const chunk of reader.stream(size, 'file contents')) yield { type: 'contents', chunk };
          await readPadding(reader, size, 'file contents');
        } else {
          await readTag(reader, TARGET);
          const targetStart = reader.offset;
          const target = await readBytes(reader, MAX_TARGET_LENGTH, 'the symlink target');
          const problem = invalidTargetReason(target);
          if (problem !== undefined) throw new NarError(problem, targetStart);
          yield { type, path, target };
        }
        await readTag(reader, CLOSE);
        if (stack.length > 0) await readTag(reader, CLOSE);
      }
      path = await nextEntry(reader, stack);
    }
    if (!(await reader.atEnd())) throw new NarError('unexpected bytes after the end of the archive', reader.offset);
  } finally {
    await reader.close();
  }
}

/** Reads up to the next entry's node inside the open directories; undefined once the root is closed. */
async function nextEntry(reader: ByteReader, stack: DirectoryFrame[]): Promise<NarPath | undefined> {
  for (;;) {
    const frame = stack.at(-1);
    if (frame === undefined) return undefined;
    const tag = await readTag(reader, ENTRY_OR_CLOSE);
    if (tag === ')') {
      stack.pop();
      if (stack.length > 0) await readTag(reader, CLOSE);
      continue;
    }
    await readTag(reader, OPEN);
    await readTag(reader, NAME);
    const nameStart = reader.offset;
    const name = await readBytes(reader, MAX_NAME_LENGTH, 'an entry name');
    const problem = invalidNameReason(name);
    if (problem !== undefined) throw new NarError(problem, nameStart);
    if (frame.previous !== undefined) {
      const order = Buffer.compare(frame.previous, name);
      if (order === 0) throw new NarError(`duplicate entry name ${describeBytes(name)}`, nameStart);
      if (order > 0) throw new NarError(`entry ${describeBytes(name)} comes after ${describeBytes(frame.previous)}: entries must be sorted by their bytes`, nameStart);
    }
    frame.previous = name;
    await readTag(reader, NODE);
    return [...frame.path, name];
  }
}

/** Reads a whole NAR without writing anything, hashing it on the way; throws NarError if it is not canonical. */
export async function validateNar(source: AsyncIterable<Uint8Array>, algorithm: HashAlgorithm = 'sha256'): Promise<NarDigest> {
  const tap = tapHash(source, algorithm);
  for await (const _event of parseNar(tap.stream)) {
    // Parsing is the validation; the events themselves are not needed.
  }
  return tap.digest();
}
