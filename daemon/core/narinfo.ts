/**
 * `.narinfo` files of binary caches (libstore/nar-info.cc), parsed with the same tolerance
 * as Nix (unknown keys ignored, optional fields absent) and printed in Nix's layout.
 * Paths are held as full store paths; the file carries references and deriver as base names.
 */
import { compareBytewise } from './aterm.ts';
import { NarInfoError } from './errors.ts';
import { formatHash, parsePrefixedHash } from './hash.ts';
import type { Hash } from './hash.ts';
import {
  DEFAULT_STORE_DIR,
  formatStorePath,
  parseStorePath,
  parseStorePathBaseName,
  sortStorePaths,
  storePathBaseName,
} from './store-path.ts';

/** The contents of a `.narinfo`. Sets (references, sigs) are kept sorted and deduplicated. */
export interface NarInfo {
  storePath: string;
  url: string;
  /** `xz`, `bzip2`, `zstd`, `none`…; Nix assumes bzip2 when the field is missing. */
  compression: string;
  fileHash?: Hash;
  fileSize?: number;
  narHash: Hash;
  narSize: number;
  references: string[];
  deriver?: string;
  system?: string;
  sigs: string[];
  /** Content address as Nix renders it, e.g. `fixed:r:sha256:<base32>`. */
  ca?: string;
}

/** The fields a signature covers. */
export type FingerprintFields = Pick<NarInfo, 'storePath' | 'narHash' | 'narSize' | 'references'>;

function parseSize(value: string, field: string): number {
  if (!/^[0-9]+$/.test(value) || !Number.isSafeInteger(Number(value))) {
    throw new NarInfoError(`narinfo field ${field} is '${value}', expected a non-negative integer`);
  }
  return Number(value);
}

function sortedUnique(values: Iterable<string>): string[] {
  return [...new Set(values)].sort(compareBytewise);
}

/** Parses a `.narinfo`; throws NarInfoError where Nix would call the file corrupt. */
export function parseNarInfo(text: string, storeDir = DEFAULT_STORE_DIR): NarInfo {
  const fields: Partial<NarInfo> = {};
  const references: string[] = [];
  const sigs: string[] = [];
  let sawReferences = false;
  // Same scan as Nix: a key runs to the first ':', its value from two characters later to the newline.
  let pos = 0;
  while (pos < text.length) {
    const colon = text.indexOf(':', pos);
    if (colon < 0) throw new NarInfoError(`narinfo line '${text.slice(pos, pos + 40)}' has no ':'`);
    const eol = text.indexOf('\n', colon + 2);
    if (eol < 0) throw new NarInfoError(`narinfo line '${text.slice(pos, pos + 40)}' does not end in a newline`);
    const key = text.slice(pos, colon);
    const value = text.slice(colon + 2, eol);
    const guard = <T>(parse: () => T): T => {
      try {
        return parse();
      } catch (error) {
        throw new NarInfoError(`narinfo field ${key} '${value}' is invalid: ${error instanceof Error ? error.message : String(error)}`);
      }
    };
    switch (key) {
      case 'StorePath':
        guard(() => parseStorePath(value, storeDir));
        fields.storePath = value;
        break;
      case 'URL':
        fields.url = value;
        break;
      case 'Compression':
        fields.compression = value;
        break;
      case 'FileHash':
        fields.fileHash = guard(() => parsePrefixedHash(value));
        break;
      case 'FileSize':
        fields.fileSize = parseSize(value, key);
        break;
      case 'NarHash':
        fields.narHash = guard(() => parsePrefixedHash(value));
        break;
      case 'NarSize':
        fields.narSize = parseSize(value, key);
        break;
      case 'References':
        if (sawReferences && references.length > 0) throw new NarInfoError('narinfo has more than one References line');
        sawReferences = true;
        for (const ref of value.split(' ').filter((r) => r !== '')) {
          references.push(formatStorePath(guard(() => parseStorePathBaseName(ref)), storeDir));
        }
        break;
      case 'Deriver':
        if (value !== 'unknown-deriver') fields.deriver = formatStorePath(guard(() => parseStorePathBaseName(value)), storeDir);
        break;
      case 'System':
        fields.system = value;
        break;
      case 'Sig':
        sigs.push(value);
        break;
      case 'CA':
        if (fields.ca !== undefined) throw new NarInfoError('narinfo has more than one CA line');
        fields.ca = value;
        break;
      default:
        break;
    }
    pos = eol + 1;
  }
  const { storePath, url, narHash, narSize } = fields;
  if (storePath === undefined) throw new NarInfoError('narinfo lacks the StorePath field');
  if (narHash === undefined) throw new NarInfoError(`narinfo of ${storePath} lacks the NarHash field`);
  if (url === undefined || url === '') throw new NarInfoError(`narinfo of ${storePath} lacks the URL field`);
  if (narSize === undefined || narSize === 0) throw new NarInfoError(`narinfo of ${storePath} lacks a non-zero NarSize`);
  return {
    ...fields,
    storePath,
    url,
    narHash,
    narSize,
    compression: fields.compression || 'bzip2',
    references: sortStorePaths(sortedUnique(references)),
    sigs: sortedUnique(sigs),
  };
}

function baseName(path: string, storeDir: string): string {
  return storePathBaseName(parseStorePath(path, storeDir));
}

/** Prints a `.narinfo` as Nix does: hashes in base32, references as sorted base names, sigs sorted. */
export function printNarInfo(info: NarInfo, storeDir = DEFAULT_STORE_DIR): string {
  const lines = [`StorePath: ${info.storePath}`, `URL: ${info.url}`, `Compression: ${info.compression}`];
  if (info.fileHash) lines.push(`FileHash: ${formatHash(info.fileHash, 'base32')}`);
  if (info.fileSize !== undefined) lines.push(`FileSize: ${info.fileSize}`);
  lines.push(`NarHash: ${formatHash(info.narHash, 'base32')}`, `NarSize: ${info.narSize}`);
  lines.push(`References: ${sortStorePaths(info.references).map((r) => baseName(r, storeDir)).join(' ')}`);
  if (info.deriver) lines.push(`Deriver: ${baseName(info.deriver, storeDir)}`);
  if (info.system) lines.push(`System: ${info.system}`);
  for (const sig of sortedUnique(info.sigs)) lines.push(`Sig: ${sig}`);
  if (info.ca) lines.push(`CA: ${info.ca}`);
  return `${lines.join('\n')}\n`;
}

/** The text a narinfo signature covers: `1;<path>;<narHash base32>;<narSize>;<refs,comma-separated>`. */
export function narInfoFingerprint(info: FingerprintFields): string {
  if (info.narSize === 0) throw new NarInfoError(`cannot fingerprint ${info.storePath}: its NAR size is unknown (0)`);
  const refs = sortStorePaths(sortedUnique(info.references));
  return `1;${info.storePath};${formatHash(info.narHash, 'base32')};${info.narSize};${refs.join(',')}`;
}
