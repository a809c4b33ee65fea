import type { RpcMethods } from '@hashwire/protocol';
import { type ServiceCurve, clientCurveFor, createRpcClient } from '@hashwire/rpc';

type StatusMethods = Pick<RpcMethods, 'svc.status'>;

/** The id of the first jobmanager (in the given order) that answers `svc.status` as itself within 300 ms. */
export async function firstAlive(
  candidates: { id: string; rpc: string; curveKey?: string }[],
  curve: ServiceCurve | undefined,
): Promise<string | null> {
  for (const candidate of candidates) {
    let clientCurve: ReturnType<typeof clientCurveFor>;
    try {
      clientCurve = clientCurveFor(curve, candidate.curveKey, `jobmanager ${candidate.id}`);
    } catch {
      continue; // CURVE on one side only: it could not answer us anyway
    }
    const client = createRpcClient<StatusMethods>(candidate.rpc, {
      timeoutMs: 300,
      ...(clientCurve ? { curve: clientCurve } : {}),
    });
    try {
      // Its port may have been taken over by another process since it registered.
      const status = (await client.request('svc.status', {})) as { id?: string };
      if (status.id === candidate.id) return candidate.id;
    } catch {
      // silent: dead or stalled, try the next
    } finally {
      await client.close();
    }
  }
  return null;
}
