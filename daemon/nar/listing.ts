/**
 * NAR listings: the `.ls` JSON a binary cache stores next to each NAR when
 * `write-nar-listing=true`, byte-identical to what Nix writes. Names and targets are raw
 * bytes, so the JSON is built as bytes (escaping like Nix's writer, not JSON.stringify).
 */
import type { NarEvent, NarPath } from './parse.ts';
import { parseNar } from './parse.ts';

export type NarListingNode =
  | { type: 'regular'; size: number; executable: boolean; narOffset: number }
  | { type: 'directory'; entries: NarListingEntry[] }
  | { type: 'symlink'; target: Buffer };

/** A directory entry; entries appear in the NAR's (byte-sorted) order. */
export interface NarListingEntry {
  name: Buffer;
  node: NarListingNode;
}

/** Builds the listing tree from parser events, for a reader that parses the NAR for other reasons too. */
export class NarListingBuilder {
  private root: NarListingNode | undefined;
  // directories[i] is the open directory at depth i; the parser reports nodes depth first.
  private readonly directories: Array<Extract<NarListingNode, { type: 'directory' }>> = [];

  add(event: NarEvent): void {
    if (event.type === 'directory') {
      const node: NarListingNode = { type: 'directory', entries: [] };
      this.attach(event.path, node);
      this.directories.push(node);
    } else if (event.type === 'regular') {
      this.attach(event.path, { type: 'regular', size: event.size, executable: event.executable, narOffset: event.narOffset });
    } else if (event.type === 'symlink') {
      this.attach(event.path, { type: 'symlink', target: event.target });
    }
  }

  /** The root node, once the whole NAR has been added. */
  tree(): NarListingNode {
    if (!this.root) throw new Error('the NAR listing is empty: no event was added');
    return this.root;
  }

  private attach(path: NarPath, node: NarListingNode): void {
    this.directories.length = path.length;
    const parent = this.directories[path.length - 1];
    if (parent === undefined) this.root = node;
    else parent.entries.push({ name: path[path.length - 1]!, node });
  }
}

/** Parses (and so validates) a NAR and returns the tree of its root node. */
export async function listNar(source: AsyncIterable<Uint8Array>): Promise<NarListingNode> {
  const builder = new NarListingBuilder();
  for await (const event of parseNar(source)) builder.add(event);
  return builder.tree();
}

const HEX = '0123456789abcdef';

/** Encodes bytes as a JSON string the way Nix's JSON writer does (raw bytes >= 0x20). */
function jsonString(bytes: Uint8Array): Buffer {
  const out: number[] = [0x22];
  for (const byte of bytes) {
    if (byte === 0x22 || byte === 0x5c) out.push(0x5c, byte);
    else if (byte === 0x0a) out.push(0x5c, 0x6e);
    else if (byte === 0x0d) out.push(0x5c, 0x72);
    else if (byte === 0x09) out.push(0x5c, 0x74);
    else if (byte < 0x20) out.push(0x5c, 0x75, 0x30, 0x30, HEX.charCodeAt(byte >> 4), HEX.charCodeAt(byte & 15));
    else out.push(byte);
  }
  out.push(0x22);
  return Buffer.from(out);
}

/** Prints `{"version":1,"root":…}` exactly as Nix writes `<hash>.ls` files. */
export function formatNarListing(root: NarListingNode): Buffer {
  const parts: Buffer[] = [Buffer.from('{"version":1,"root":')];
  // An explicit work stack: a hostile NAR may nest deeper than the call stack allows.
  const work: Array<NarListingNode | Buffer> = [Buffer.from('}'), root];
  while (work.length > 0) {
    const item = work.pop()!;
    if (Buffer.isBuffer(item)) {
      parts.push(item);
    } else if (item.type === 'regular') {
      const executable = item.executable ? ',"executable":true' : '';
      parts.push(Buffer.from(`{"type":"regular","size":${item.size}${executable},"narOffset":${item.narOffset}}`));
    } else if (item.type === 'symlink') {
      parts.push(Buffer.from('{"type":"symlink","target":'), jsonString(item.target), Buffer.from('}'));
    } else {
      parts.push(Buffer.from('{"type":"directory","entries":{'));
      work.push(Buffer.from('}}'));
      for (let i = item.entries.length - 1; i >= 0; i--) {
        const entry = item.entries[i]!;
        work.push(entry.node, Buffer.concat([i > 0 ? Buffer.from(',') : Buffer.alloc(0), jsonString(entry.name), Buffer.from(':')]));
      }
    }
  }
  return Buffer.concat(parts);
}
