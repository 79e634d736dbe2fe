/** The files a build's outputs offer for download (`nix-support/hydra-build-products`), as pages and JSON list them. */
import type { Pool } from 'pg';

export interface ProductView {
  type: string;
  subtype: string;
  path: string;
  name: string;
  /** Where it downloads from: `/api/builds/<drv hash>/products/<store path without /nix/store/>`. */
  url: string;
  defaultPath?: string;
  fileSize?: number;
  sha256?: string;
}

/** The download URL of `path` (a file inside a product of the derivation `drvPath`). */
export function productUrl(drvPath: string, path: string): string {
  const hash = drvPath.slice(drvPath.lastIndexOf('/') + 1, drvPath.lastIndexOf('/') + 33);
  const inStore = path.split('/').slice(3);
  return `/api/builds/${hash}/products/${inStore.map(encodeURIComponent).join('/')}`;
}

/** The products of a derivation in the order its outputs list them. */
export async function readProducts(pool: Pool, drvPath: string): Promise<ProductView[]> {
  const { rows } = await pool.query<{
    type: string;
    subtype: string;
    path: string;
    name: string;
    default_path: string | null;
    file_size: string | null;
    sha256: string | null;
  }>('SELECT type, subtype, path, name, default_path, file_size, sha256 FROM build_products WHERE drv_path = $1 ORDER BY position', [drvPath]);
  return rows.map((row) => ({
    type: row.type,
    subtype: row.subtype,
    path: row.path,
    name: row.name,
    url: productUrl(drvPath, row.default_path === null ? row.path : `${row.path}/${row.default_path}`),
    ...(row.default_path === null ? {} : { defaultPath: row.default_path }),
    ...(row.file_size === null ? {} : { fileSize: Number(row.file_size) }),
    ...(row.sha256 === null ? {} : { sha256: row.sha256 }),
  }));
}

/** True when `path` is a product of `drvPath` or lies inside one of its directory products. */
export async function isProductPath(pool: Pool, drvPath: string, path: string): Promise<boolean> {
  const { rows } = await pool.query(
    `SELECT 1 FROM build_products
      WHERE drv_path = $1 AND (path = $2 OR (file_size IS NULL AND starts_with($2, path || '/')))
      LIMIT 1`,
    [drvPath, path],
  );
  return rows.length > 0;
}
