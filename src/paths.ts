// Where paths point: the package's own files, and a path from a config file.
import { existsSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The package root: the nearest directory above this module that holds config/default.yaml. This module
 * runs as dist/paths.js and inside the CLI's bundle (dist/bundle/), so a fixed `..` would not do.
 */
export const PACKAGE_ROOT = packageRoot(dirname(fileURLToPath(import.meta.url)));

function packageRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'config', 'default.yaml'))) return dir;
    if (dirname(dir) === dir) return resolve(from, '..');
  }
}

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
