// What the commands share: an input file checked before reading, the package's version.
import { readFileSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError } from '../errors.js';
import { PACKAGE_ROOT } from '../paths.js';

/** A named input file must exist and be a file; `-` or nothing is stdin. */
export async function assertReadable(file: string | undefined, what: string): Promise<void> {
  if (file === undefined || file === '-') return;
  const info = await stat(file).catch((error: NodeJS.ErrnoException) => {
    throw new ConfigError(`${file}: cannot read ${what} file (${error.code ?? 'error'})`);
  });
  if (info.isDirectory()) throw new ConfigError(`${file}: is a directory, expected a ${what} file`);
}

/** The package's version, from its package.json. */
export function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string };
    return pkg.version;
  } catch {
    return '0.0.0';
  }
}
