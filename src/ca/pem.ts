/**
 * PEM text: splitting a file of several certificates into blocks, and DER to
 * PEM. Node built-ins only, so the proxy can use it.
 */

const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([A-Za-z0-9+/=\r\n]+?)-----END \1-----/g;

/** The PEM blocks of `text` with the given label, each normalized to 64-column lines ending in a newline. */
export function splitPem(text: string, label = 'CERTIFICATE'): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(BLOCK)) {
    if (m[1] !== label) continue;
    out.push(derToPem(Buffer.from(m[2]!.replace(/\s+/g, ''), 'base64'), label));
  }
  return out;
}

/** PEM text of DER bytes under `label`, ending in a newline. */
export function derToPem(der: Uint8Array | ArrayBuffer, label: string): string {
  const b64 = Buffer.from(der instanceof ArrayBuffer ? new Uint8Array(der) : der).toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}
