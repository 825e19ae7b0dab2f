// debit-credit: POST /debit and POST /credit {account, amount}. Only the
// fundsTransfer group may call it (security.yaml).
import { readJson, serve } from './lib/mesh.js';

const entry = (kind) => async (req) => {
  const { account = '', amount = 0 } = await readJson(req);
  if (!account || !(Number(amount) >= 0)) return { status: 400, body: { error: 'give {account, amount} with amount >= 0' } };
  return { body: { [kind]: Number(amount), account } };
};

serve({ 'POST /debit': entry('debited'), 'POST /credit': entry('credited') });
