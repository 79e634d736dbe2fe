/** Schema of the per-repository `.harmonia-ci.toml`. */
import { z } from 'zod';
import { camelize } from './camelize.ts';
import { duration, matching, oneOf } from './fields.ts';

// Attribute paths as nix-eval-jobs takes them: identifiers or "quoted" names joined by dots.
const SEGMENT = String.raw`(?:[A-Za-z_][A-Za-z0-9_'-]*|"[^"\\]*")`;
const ATTR_PATH = new RegExp(`^${SEGMENT}(?:\\.${SEGMENT})*$`);

/** Which commit statuses an eval sends: the two summaries, also one per failed attribute, or one per attribute. */
export const STATUS_MODES = ['summary', 'failures', 'all'] as const;
export type StatusMode = (typeof STATUS_MODES)[number];

export const repoConfigSchema = z
  .strictObject({
    attrs: z
      .array(matching(ATTR_PATH, 'an attribute path such as "checks" or "packages.x86_64-linux"'), {
        error: 'expected a list of attribute paths such as ["checks"]',
      })
      .min(1, { error: 'expected at least one attribute path' })
      .default(['checks']),
    // Unset: the project's setting. A repository may turn import-from-derivation off, never on.
    'allow-ifd': z.boolean({ error: 'expected true or false' }).optional(),
    'eval-timeout': duration().optional(),
    // Unset: the project's setting.
    statuses: oneOf(STATUS_MODES).optional(),
  })
  .transform((value) => camelize(value));
