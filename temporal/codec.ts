/**
 * Payloads encrypted before they reach Temporal: workflow histories carry presigned upload URLs,
 * log tails and forge details, and anyone who can read a history (the Web UI, `temporal workflow
 * show`) would read them. With `temporal.codec-key-file` set, every role encrypts each payload with
 * AES-256-GCM under that key; the server stores ciphertext. Payloads that arrive unencrypted (a
 * signal sent with the `temporal` CLI, histories from before the key) are read as they are. The
 * Web UI decodes through the API's codec endpoint (api/routes/codec.ts), for people allowed to.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import type { Payload as PayloadType, PayloadCodec } from '@temporalio/common';
import proto from '@temporalio/proto';
import { TemporalCodecError } from './errors.ts';

/** The metadata encoding of an encrypted payload. */
export const ENCRYPTED_ENCODING = 'binary/encrypted';
const METADATA_ENCODING = 'encoding';
const METADATA_KEY_ID = 'encryption-key-id';
const CIPHER = 'aes-256-gcm';
const IV_BYTES = 12;
const TAG_BYTES = 16;
const { Payload } = proto.temporal.api.common.v1;

/** The codec key: 32 bytes, written base64 in its file (`harmonia-ci keys codec`). */
export interface CodecKey {
  /** A short fingerprint, stored with each payload so a wrong key is named rather than a garbled failure. */
  id: string;
  bytes: Buffer;
}

/** A new random key, as its file holds it. */
export function generateCodecKeyText(): string {
  return `${randomBytes(32).toString('base64')}\n`;
}

export function parseCodecKey(text: string, source: string): CodecKey {
  const bytes = Buffer.from(text.trim(), 'base64');
  if (bytes.length !== 32 || bytes.toString('base64') !== text.trim()) {
    throw new TemporalCodecError(`${source} is not a codec key (32 bytes, base64): make one with \`harmonia-ci keys codec ${source}\``);
  }
  return { id: createHash('sha256').update(bytes).digest('hex').slice(0, 16), bytes };
}

/** AES-256-GCM over each whole payload (metadata and data), as Temporal's encryption samples do. */
export class EncryptionCodec implements PayloadCodec {
  constructor(private readonly key: CodecKey) {}

  async encode(payloads: PayloadType[]): Promise<PayloadType[]> {
    return payloads.map((payload) => {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv(CIPHER, this.key.bytes, iv);
      const plain = Payload.encode(payload).finish();
      const sealed = Buffer.concat([iv, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
      return {
        metadata: { [METADATA_ENCODING]: Buffer.from(ENCRYPTED_ENCODING), [METADATA_KEY_ID]: Buffer.from(this.key.id) },
        data: sealed,
      };
    });
  }

  async decode(payloads: PayloadType[]): Promise<PayloadType[]> {
    return payloads.map((payload) => {
      if (Buffer.from(payload.metadata?.[METADATA_ENCODING] ?? []).toString() !== ENCRYPTED_ENCODING) return payload;
      const keyId = Buffer.from(payload.metadata?.[METADATA_KEY_ID] ?? []).toString();
      if (keyId !== this.key.id) {
        throw new TemporalCodecError(`a payload was encrypted with codec key ${keyId}, but this process has key ${this.key.id}: give every role the same temporal.codec-key-file`);
      }
      const sealed = Buffer.from(payload.data ?? []);
      if (sealed.length < IV_BYTES + TAG_BYTES) throw new TemporalCodecError('an encrypted payload is truncated');
      const decipher = createDecipheriv(CIPHER, this.key.bytes, sealed.subarray(0, IV_BYTES));
      decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
      let plain: Buffer;
      try {
        plain = Buffer.concat([decipher.update(sealed.subarray(IV_BYTES, sealed.length - TAG_BYTES)), decipher.final()]);
      } catch (error) {
        throw new TemporalCodecError('an encrypted payload failed its integrity check: it was altered, or the key is not the one it was written with', { cause: error });
      }
      try {
        return Payload.decode(plain) as PayloadType;
      } catch (error) {
        throw new TemporalCodecError('a decrypted payload is not a payload', { cause: error });
      }
    });
  }
}
