/**
 * A "host" on this machine that shares no Nix store with the others: a command run in its own
 * mount namespace (`unshare --mount`) with an empty directory bound over /nix and a nix-daemon of
 * its own on a private socket, as a builder on another machine has. Everything outside /nix (the
 * network over loopback, temporary directories) stays shared, so the host reaches Temporal, the
 * cache and S3 as a remote one would. The store is visible from outside at `<root>/nix/store`.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { LOCAL_DAEMON_OPTIONS } from '../../lib/nix-daemon.ts';
import { locateTool } from '../../lib/tools.ts';

// Runs in the new namespace: bind the host's own /nix, start its daemon, run the command, and
// forward SIGTERM/SIGINT to it; the daemon goes with the command. A store needs its state directory
// before the daemon starts: without one, Nix would take the daemon's own socket for the store.
const SCRIPT = `
set -e
root="$1"; daemon_bin="$2"; shift 2
mount --bind "$root/nix" /nix
env -u NIX_REMOTE "$daemon_bin" ${LOCAL_DAEMON_OPTIONS.map((option) => `'${option}'`).join(' ')} >"$root/daemon.log" 2>&1 &
daemon=$!
i=0
until [ -S "$NIX_DAEMON_SOCKET_PATH" ]; do
  i=$((i + 1)); [ $i -lt 200 ] || { echo "the host's nix-daemon did not start: see $root/daemon.log" >&2; exit 1; }
  sleep 0.05
done
"$@" &
child=$!
trap 'kill -TERM $child 2>/dev/null || true' TERM INT
status=0
wait $child || status=$?
# A signal interrupts the first wait: wait for the command to finish its graceful stop.
while kill -0 $child 2>/dev/null; do wait $child || status=$?; done
kill $daemon 2>/dev/null || true
exit $status
`;

export interface NamespaceHost {
  /** The host's directory: `nix/` (its store), `daemon.sock`, `daemon.log`. */
  root: string;
  /** The program and arguments that start `command` on this host. */
  wrap(command: string, args: readonly string[]): { file: string; args: string[] };
  /** Environment a process on this host needs to reach its daemon. */
  env: Record<string, string>;
}

/** Prepares an empty store under `root` for a host; `wrap` gives the command line that runs on it. */
export async function namespaceHost(root: string): Promise<NamespaceHost> {
  await mkdir(join(root, 'nix', 'store'), { recursive: true });
  await mkdir(join(root, 'nix', 'var', 'nix'), { recursive: true });
  const daemon = locateTool({ name: 'nix-daemon', installHint: 'install Nix with `npm run bootstrap` (Debian package nix-bin)' });
  return {
    root,
    env: { NIX_DAEMON_SOCKET_PATH: join(root, 'daemon.sock'), NIX_REMOTE: 'daemon' },
    wrap: (command, args) => ({
      file: 'unshare',
      args: ['--mount', '--propagation', 'private', '--', '/bin/sh', '-c', SCRIPT, 'namespace-host', root, daemon, command, ...args],
    }),
  };
}
