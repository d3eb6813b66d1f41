/** The service as a child process (demo mode), for the load test when no --url is given. */
import { ChildProcess, spawn } from 'child_process';
import * as path from 'path';
import * as readline from 'readline';

export interface RunningService {
  url: string;
  child: ChildProcess;
  /** SIGTERM, then the exit status once it has drained. */
  stop(): Promise<number | null>;
}

export function startDemoService(timeoutMs = 60_000): Promise<RunningService> {
  const child = spawn(process.execPath, [path.join(__dirname, 'server.js'), '--demo', '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the service did not start within ${timeoutMs} ms`));
    }, timeoutMs);
    child.once('exit', (code) => reject(new Error(`the service exited with status ${code} before listening`)));
    readline.createInterface({ input: child.stdout! }).on('line', (line) => {
      let event: { event?: string; url?: string };
      try {
        event = JSON.parse(line);
      } catch {
        return;
      }
      if (event.event === 'listening' && event.url) {
        clearTimeout(timer);
        resolve({
          url: event.url,
          child,
          stop: () => {
            child.kill('SIGTERM');
            return exited;
          },
        });
      }
    });
  });
}
