// frontend: GET / shows alice's balance (from accounts) and makes a small
// transfer to bob (through funds-transfer), each through the mesh.
import { call, ok, serve } from './lib/mesh.js';

async function home(req, url) {
  const from = url.searchParams.get('from') ?? 'alice';
  const to = url.searchParams.get('to') ?? 'bob';
  const amount = Number(url.searchParams.get('amount') ?? 10);
  const [balance, transfer] = await Promise.all([
    call(req, 'GET', `http://accounts:8080/balance?account=${encodeURIComponent(from)}`),
    call(req, 'POST', 'http://funds-transfer:8080/transfer', { from, to, amount }),
  ]);
  return { status: ok(balance) && ok(transfer) ? 200 : 502, body: { page: `Welcome, ${from}`, balance, transfer } };
}

serve({
  'GET /': home,
  'GET /balance': async (req, url) => {
    const balance = await call(req, 'GET', `http://accounts:8080/balance?account=${encodeURIComponent(url.searchParams.get('account') ?? 'alice')}`);
    return { status: ok(balance) ? 200 : 502, body: { balance } };
  },
});
