// notifications: POST /notify {to, text}; here it only logs the message.
import { readJson, serve } from './lib/mesh.js';

serve({
  'POST /notify': async (req) => {
    const { to = [], text = '' } = await readJson(req);
    console.log(`notify ${[].concat(to).join(', ')}: ${text}`);
    return { body: { notified: [].concat(to) } };
  },
});
