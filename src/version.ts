/** The MXFS version: package.json's, read once (the one place it is written). */
import fs from 'node:fs';
import path from 'node:path';

// dist/src/version.js -> the package root, in a clone and in an installed package alike.
export const VERSION: string = (JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string }).version;
