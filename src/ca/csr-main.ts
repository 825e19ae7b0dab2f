/**
 * A key and a CSR made in a short-lived process of its own: `node
 * csr-main.js <spiffe id>` prints `{"keyPem","csrPem"}` on stdout. The proxy
 * uses it so that the X.509 library (some 20 MiB once loaded) never lives in
 * the sidecar's own heap; the key goes only through the pipe between the two.
 */
import { newKeyAndCsr } from './workload-key.js';

const identity = process.argv[2];
if (!identity) {
  process.stderr.write('usage: csr-main.js <spiffe id>\n');
  process.exit(2);
}
try {
  process.stdout.write(JSON.stringify(await newKeyAndCsr(identity)));
} catch (e) {
  process.stderr.write(`${(e as Error).message}\n`);
  process.exit(1);
}
