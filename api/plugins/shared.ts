/**
 * What the `fastify-plugin` package does, without the package: a plugin marked
 * this way runs in its parent's context, so its decorations reach every route.
 */
import type { FastifyPluginAsync } from 'fastify';

/** Marks `plugin` as not encapsulated and names it in Fastify's plugin tree. */
export function sharedPlugin<Options extends object>(name: string, plugin: FastifyPluginAsync<Options>): FastifyPluginAsync<Options> {
  Object.assign(plugin, {
    [Symbol.for('skip-override')]: true,
    [Symbol.for('fastify.display-name')]: name,
  });
  return plugin;
}
