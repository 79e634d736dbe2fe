/** Worker-protocol versions: 16-bit `major << 8 | minor`, as Nix encodes them. */

/** The newest version this client speaks (Nix 2.19's). Newer daemons talk down to it. */
export const CLIENT_PROTOCOL_VERSION = (1 << 8) | 37;

/** The oldest daemon we accept: Nix 2.8 (protocol 1.34). */
export const MINIMUM_PROTOCOL_VERSION = (1 << 8) | 34;

/** Major part of a protocol version (the high byte, still shifted). */
export function protocolMajor(version: number): number {
  return version & 0xff00;
}

/** Minor part of a protocol version. */
export function protocolMinor(version: number): number {
  return version & 0x00ff;
}

/** `1.34` style rendering. */
export function formatProtocolVersion(version: number): string {
  return `${version >> 8}.${protocolMinor(version)}`;
}

/**
 * The version both sides use: the lower of the two, as the daemon does. Returns undefined when the
 * daemon is of another major version or older than our minimum.
 */
export function negotiateProtocolVersion(daemonVersion: number): number | undefined {
  if (protocolMajor(daemonVersion) !== protocolMajor(CLIENT_PROTOCOL_VERSION)) return undefined;
  if (daemonVersion < MINIMUM_PROTOCOL_VERSION) return undefined;
  return Math.min(daemonVersion, CLIENT_PROTOCOL_VERSION);
}
