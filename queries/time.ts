/** PostgreSQL times as the read model hands them out. */

/** A timestamp as ISO 8601 text; null stays null. */
export const iso = (value: Date | null): string | null => (value === null ? null : value.toISOString());
