import { cpus } from 'node:os';

export interface MachineInfo {
  cpu: string;
  cores: number;
  node: string;
}

export function machineInfo(): MachineInfo {
  const list = cpus();
  return { cpu: list[0]?.model.trim() ?? 'unknown', cores: list.length, node: process.version };
}
