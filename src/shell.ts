// A word for a POSIX shell, for the commands personaflow prints for a person to paste.

/** As it is when it needs no quotes, else in single quotes (a `'` inside becomes `'\''`); the empty word is `''`. */
export const shellWord = (word: string): string => (/^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", "'\\''")}'`);
