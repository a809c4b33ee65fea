import net from 'node:net';

/**
 * Sends one line to a unix socket and resolves with everything the peer writes before it
 * closes the connection: HAProxy's runtime API outside prompt mode (confgen's HaproxyRuntime
 * and the testkit use it). Rejects, naming the socket, when it cannot connect or the answer
 * does not end within `timeoutMs`.
 */
export function socketCommand(socketPath: string, line: string, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(socketPath);
    const chunks: Buffer[] = [];
    let failed = false;
    const fail = (message: string) => {
      if (failed) return;
      failed = true;
      socket.destroy();
      reject(new Error(`${socketPath}: ${message}`));
    };
    socket.setTimeout(timeoutMs, () => fail(`no complete answer to "${line}" within ${timeoutMs} ms`));
    socket.on('connect', () => socket.end(`${line}\n`));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', (error) => fail(error.message));
    socket.on('close', () => {
      if (!failed) resolve(Buffer.concat(chunks).toString('utf8'));
    });
  });
}
