// One instance of a bank service: answers every request with who served it.
// Started by `trellis up` with PORT, SERVICE, INSTANCE and VERSION set.
import { createServer } from 'node:http';

const { PORT = '8080', SERVICE = 'service', INSTANCE = `${SERVICE}-0`, VERSION = 'v1' } = process.env;

createServer((req, res) => {
  if (req.url === '/healthz') {
    res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    return;
  }
  const body = JSON.stringify({ service: SERVICE, instance: INSTANCE, version: VERSION, method: req.method, path: req.url });
  res.writeHead(200, { 'content-type': 'application/json' }).end(body + '\n');
}).listen(Number(PORT), '127.0.0.1');
