// Where paths point: the package's own files, and a path from a config file.
import { existsSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The package root. This module sits one level under it both as dist/paths.js and inside the CLI's
 * single-file bundle (dist/cli.bundle.js), so `..` from here is the root either way: modules deeper in
 * dist/ must take the package's files from here, not from their own location.
 */
export const PACKAGE_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** config/ of the package: default.yaml, prompts, distractor strategies. */
export const PACKAGE_CONFIG_DIR = join(PACKAGE_ROOT, 'config');

/**
 * A relative path as PersonaGym users write it: next to the config file, or else from the working
 * directory (PersonaGym runs from its repository root). The config-relative path wins when both exist,
 * and is the one named in messages when neither does.
 */
export function locateConfigPath(path: string, baseDir: string): string {
  if (isAbsolute(path)) return path;
  const nextToConfig = join(baseDir, path);
  return existsSync(nextToConfig) || !existsSync(resolve(path)) ? nextToConfig : resolve(path);
}
