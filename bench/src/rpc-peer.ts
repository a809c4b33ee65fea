// The server side of the rpc request–reply benchmark, in its own process as in production:
// `node rpc-peer.js rpc` serves `bench.echo` with the rpc package, `node rpc-peer.js raw` echoes
// bare ZeroMQ frames. Prints its endpoint on stdout; exits when stdin closes.
import { createRpcServer } from '@hashwire/rpc';
import { Router } from 'zeromq';

interface EchoMethods {
  'bench.echo': { req: unknown; rep: unknown };
}

const mode = process.argv[2];
if (mode === 'rpc') {
  const server = await createRpcServer<EchoMethods>({ handlers: { 'bench.echo': (body) => body } });
  process.stdout.write(`${server.endpoint}\n`);
  process.stdin.on('end', () => void server.close().then(() => process.exit(0)));
  process.stdin.resume();
} else {
  const router = new Router({ linger: 0, sendTimeout: 0 });
  await router.bind('tcp://127.0.0.1:*');
  process.stdout.write(`${router.lastEndpoint}\n`);
  process.stdin.on('end', () => {
    router.close();
    process.exit(0);
  });
  process.stdin.resume();
  for await (const frames of router) await router.send(frames).catch(() => {});
}
