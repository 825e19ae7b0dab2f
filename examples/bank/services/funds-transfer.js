// funds-transfer (label group: fundsTransfer, so debit-credit lets it in):
// POST /transfer {from, to, amount} debits one account, credits the other,
// then tells notifications.
import { call, ok, readJson, serve } from './lib/mesh.js';

serve({
  'POST /transfer': async (req) => {
    const { from = 'alice', to = 'bob', amount = 0 } = await readJson(req);
    const debit = await call(req, 'POST', 'http://debit-credit:8080/debit', { account: from, amount });
    if (!ok(debit)) return { status: 502, body: { transfer: 'failed', debit } };
    const credit = await call(req, 'POST', 'http://debit-credit:8080/credit', { account: to, amount });
    if (!ok(credit)) return { status: 502, body: { transfer: 'failed', debit, credit } };
    const notification = await call(req, 'POST', 'http://notifications:8080/notify', { to: [from, to], text: `${amount} moved from ${from} to ${to}` });
    return { body: { transfer: 'done', from, to, amount, debit, credit, notification } };
  },
});
