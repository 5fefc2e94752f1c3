/**
 * INI tokenizer for mxfsd configuration files. Owns only the syntax: `[section]` headers,
 * `key = value` lines, `#`/`;` comment lines and blank lines, each with its line number.
 * It knows nothing about which sections or keys exist; src/config/config.ts gives them meaning.
 * Repeated sections are kept as separate instances, in file order ([peer] and [volume] repeat).
 */

export interface IniEntry { key: string; value: string; line: number }
export interface IniSection { name: string; line: number; entries: IniEntry[] }

/** A syntax problem; config.ts turns it into a ConfigError carrying the file name. */
export class IniSyntaxError extends Error {
  constructor(readonly line: number, readonly reason: string, readonly key?: string) {
    super(`line ${line}: ${reason}`);
    this.name = 'IniSyntaxError';
  }
}

// Section and key names are deliberately narrow so a stray character is reported at its
// line instead of producing a key that can never match.
const NAME = /^[A-Za-z0-9_.-]+$/;

export function tokenizeIni(text: string): IniSection[] {
  const sections: IniSection[] = [];
  let current: IniSection | undefined;
  // Strip a UTF-8 BOM that some editors add; it would otherwise break the first line.
  const lines = text.replace(/^\uFEFF/, '').split(/\r\n|\r|\n/);
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const line = lines[i].trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;

    if (line.startsWith('[')) {
      const m = /^\[\s*([^\]]*?)\s*\]$/.exec(line);
      if (!m) throw new IniSyntaxError(lineNo, `malformed section header '${clip(line)}' (expected [name])`);
      if (!NAME.test(m[1])) throw new IniSyntaxError(lineNo, `bad section name '${clip(m[1])}' (letters, digits, '_', '.', '-')`);
      current = { name: m[1], line: lineNo, entries: [] };
      sections.push(current);
      continue;
    }

    const eq = line.indexOf('=');
    if (eq < 0) throw new IniSyntaxError(lineNo, `malformed line '${clip(line)}' (expected key = value, [section] or a # comment)`);
    const key = line.slice(0, eq).trim();
    const value = line.slice(eq + 1).trim();
    if (key === '') throw new IniSyntaxError(lineNo, `malformed line '${clip(line)}' (missing key before '=')`);
    if (!NAME.test(key)) throw new IniSyntaxError(lineNo, `bad key name '${clip(key)}' (letters, digits, '_', '.', '-')`);
    if (!current) throw new IniSyntaxError(lineNo, `key '${key}' appears before any [section] header`, key);
    current.entries.push({ key, value, line: lineNo });
  }
  return sections;
}

/** Keep echoed input short so one garbage line cannot flood the terminal. */
function clip(s: string): string {
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}
