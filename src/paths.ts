// Where a path from a config file points.
import { existsSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';

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
