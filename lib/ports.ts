/**
 * Free TCP ports for child servers. The kernel picks a free port when we bind port 0;
 * we release it and hand the number to the child. Another process may grab it in
 * between, so launchers retry with fresh ports when the child reports the clash
 * (see isAddressInUseMessage).
 */
import { connect, createServer, type Server } from 'node:net';

function listenOnFreePort(host: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ port: 0, host, exclusive: true }, () => resolve(server));
  });
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

/** True when we can bind host:port right now, i.e. no other server holds it. */
export async function isPortFree(host: string, port: number): Promise<boolean> {
  const server = createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port, host, exclusive: true }, resolve);
    });
    return true;
  } catch {
    return false;
  } finally {
    await close(server);
  }
}

/** Returns `count` distinct TCP ports that were free on `host` a moment ago. */
export async function findFreePorts(count: number, host = '127.0.0.1'): Promise<number[]> {
  // All sockets stay open until every port is known, so the kernel cannot hand out one twice.
  const servers: Server[] = [];
  try {
    for (let i = 0; i < count; i++) servers.push(await listenOnFreePort(host));
    return servers.map((server) => {
      const address = server.address();
      if (address === null || typeof address === 'string') throw new Error(`could not read the port bound on ${host}`);
      return address.port;
    });
  } finally {
    await Promise.all(servers.map(close));
  }
}

/** Returns one TCP port that was free on `host` a moment ago. */
export async function findFreePort(host = '127.0.0.1'): Promise<number> {
  const [port] = await findFreePorts(1, host);
  if (port === undefined) throw new Error(`no free port on ${host}`);
  return port;
}

/** True when a server's error output says it could not bind because the port is taken. */
export function isAddressInUseMessage(text: string): boolean {
  return /address already in use|EADDRINUSE|bind: address/i.test(text);
}

/** True when something accepts TCP connections on host:port (a cheap probe before a protocol check). */
export function isPortOpen(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (open: boolean): void => {
      socket.destroy();
      resolve(open);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}
