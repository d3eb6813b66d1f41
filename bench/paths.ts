import * as fs from 'fs';
import * as path from 'path';

/** The checkout's root (it holds package.json and CMakeLists.txt), from bench/ or dist/bench/. */
export function packageRoot(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'package.json')) && fs.existsSync(path.join(dir, 'CMakeLists.txt'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`cannot find the package root above ${__dirname}`);
  }
}
