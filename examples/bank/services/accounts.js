// accounts: GET /balance?account=NAME. v2 (the canary) also says the currency.
import { self, serve } from './lib/mesh.js';

const BALANCES = { alice: 1250, bob: 310, carol: 42 };

serve({
  'GET /balance': async (_req, url) => {
    const account = url.searchParams.get('account') ?? 'alice';
    const balance = BALANCES[account];
    if (balance === undefined) return { status: 404, body: { error: `no account "${account}"` } };
    return { body: self.version === 'v2' ? { account, balance, currency: 'EUR' } : { account, balance } };
  },
});
