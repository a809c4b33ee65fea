import { type RestClient, createRestClient } from '@hashwire/client';

/** The API token this tab uses (kept for the tab only, never in a cookie or the URL). */
const KEY = 'hashwire.token';

export function token(): string | null {
  try {
    return sessionStorage.getItem(KEY);
  } catch {
    return null;
  }
}

export function setToken(value: string | null): void {
  if (value === null || value === '') sessionStorage.removeItem(KEY);
  else sessionStorage.setItem(KEY, value);
}

export function rest(): RestClient {
  const t = token();
  return createRestClient({ url: location.origin, ...(t !== null && { token: t }) });
}
