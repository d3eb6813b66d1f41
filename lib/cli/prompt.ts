/**
 * Reads a secret from the terminal without echoing it. Raw mode hands us each keystroke, so
 * nothing reaches the screen; the terminal is restored however the read ends.
 */
export function promptHidden(question: string): Promise<string> {
  const input = process.stdin;
  const output = process.stderr;
  if (!input.isTTY || typeof input.setRawMode !== 'function') {
    return Promise.reject(new Error('cannot prompt for the PIN: stdin is not a terminal'));
  }
  output.write(question);
  return new Promise((resolve, reject) => {
    let secret = '';
    const finish = (error?: Error) => {
      input.setRawMode(false);
      input.pause();
      input.removeListener('data', onData);
      output.write('\n');
      if (error) reject(error);
      else resolve(secret);
    };
    const onData = (chunk: Buffer) => {
      for (const ch of chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return finish();
        if (ch === '\u0003') return finish(new Error('PIN entry interrupted')); // Ctrl-C
        if (ch === '\u0004' && secret === '') return finish(new Error('PIN entry cancelled')); // Ctrl-D
        if (ch === '\u007f' || ch === '\b') secret = [...secret].slice(0, -1).join('');
        else if (ch >= ' ') secret += ch;
      }
    };
    input.setRawMode(true);
    input.resume();
    input.on('data', onData);
  });
}
