/**
 * Request authentication end to end, all real and in process: a JWKS server
 * on loopback (node:http), a control plane (createControlPlane) on a config
 * directory whose RequestAuthentication names that server's `jwksUri`, and
 * two sidecars — `client.zt` calling `api.zt` — each driven by an agent that
 * gets its certificate from the control plane with a join token and applies
 * what it pushes. The control plane fetches the keys and inlines them into
 * the callee's snapshot; the proxies make no outbound call for them.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { createAgent, type Agent } from '../../src/proxy/agent.js';
import { createDataPlane } from '../../src/proxy/data-plane.js';
import type { DataPlane } from '../../src/proxy/types.js';
import { ConfigDir, identityFor, startControlPlane, type TestControlPlane } from '../controlplane/helpers.js';
import { Client, startApp, type App } from './proxy.js';

export const ISSUER = 'https://issuer.zt.example';
export const AUDIENCE = 'api.zt';

/** An ES256 signing key and its public JWK. */
export interface SigningKey {
  readonly privateKey: CryptoKey;
  readonly jwk: JWK;
}

export async function signingKey(kid: string): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  return { privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' } };
}

/** A token of `key` for `sub`, valid for an hour unless `expiresAt` (seconds since the epoch) says otherwise. */
export function tokenOf(key: SigningKey, sub: string, o: { expiresAt?: number; issuer?: string } = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ scope: 'read' })
    .setProtectedHeader({ alg: 'ES256', kid: String(key.jwk.kid), typ: 'JWT' })
    .setIssuer(o.issuer ?? ISSUER).setSubject(sub).setAudience(AUDIENCE)
    .setIssuedAt(now - 7200).setExpirationTime(o.expiresAt ?? now + 3600)
    .sign(key.privateKey);
}

/** The App and policies: api accepts tokens of ISSUER and allows only callers with one. */
export function jwtMeshYaml(jwksUri: string): Record<string, string> {
  return {
    'app.yaml': `apiVersion: trellis.dev/v1alpha1
kind: App
metadata: { name: zt }
spec:
  namespace: zt
  services:
  - { name: api, ports: [{ name: http, port: 8080 }], command: [node, api.js] }
  - { name: client, ports: [{ name: http, port: 8080 }], command: [node, client.js] }
`,
    'security.yaml': `apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: { name: api-jwt, namespace: zt }
spec:
  selector: { matchLabels: { app: api } }
  jwtRules:
  - issuer: "${ISSUER}"
    audiences: ["${AUDIENCE}"]
    jwksUri: "${jwksUri}"
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: api-require-jwt, namespace: zt }
spec:
  selector: { matchLabels: { app: api } }
  action: ALLOW
  rules:
  - from: [{ source: { requestPrincipals: ["${ISSUER}/*"] } }]
`,
  };
}

/** The running pieces. */
export class JwtMesh {
  readonly closers: (() => unknown)[] = [];
  /** GETs the JWKS server answered. */
  jwksHits = 0;
  jwks!: Server;
  cp!: TestControlPlane;
  api!: DataPlane;
  caller!: DataPlane;
  app!: App;
  client!: Client;
  agents: Agent[] = [];

  /** Starts the JWKS server (publishing `key`), the control plane, both sidecars and their agents. */
  static async start(key: SigningKey): Promise<JwtMesh> {
    const m = new JwtMesh();
    try {
      await m.#start(key);
    } catch (e) {
      await m.close();
      throw e;
    }
    return m;
  }

  async #start(key: SigningKey): Promise<void> {
    this.jwks = createServer((req, res) => {
      this.jwksHits++;
      if (req.url !== '/jwks.json') { res.writeHead(404).end(); return; }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [key.jwk] }));
    });
    await new Promise<void>((r) => this.jwks.listen(0, '127.0.0.1', r));
    this.closers.push(() => new Promise((r) => { this.jwks.closeAllConnections(); this.jwks.close(r); }));
    const dir = new ConfigDir(jwtMeshYaml(`http://127.0.0.1:${(this.jwks.address() as AddressInfo).port}/jwks.json`));
    this.closers.push(() => dir.remove());
    this.cp = await startControlPlane(dir.path);
    this.closers.push(() => this.cp.cp.close());
    this.app = await startApp('api.zt');
    this.closers.push(() => this.app.close());
    this.api = await this.#sidecar('api.zt', this.app.port);
    this.caller = await this.#sidecar('client.zt');
    this.client = new Client(this.caller.addresses.outbound!);
    this.closers.push(() => this.client.close());
  }

  async #sidecar(instance: string, appPort?: number): Promise<DataPlane> {
    const dp = createDataPlane({ mode: 'sidecar', ...(appPort ? { appPort } : {}) });
    await dp.start();
    this.closers.push(() => dp.close(100));
    const agent = createAgent({ controlPlane: this.cp.grpc, instance, dataPlane: dp, identity: identityFor(this.cp, instance, dp) });
    this.agents.push(agent);
    this.closers.push(() => agent.close());
    await agent.start();
    return dp;
  }

  async close(): Promise<void> {
    for (const f of this.closers.splice(0).reverse()) await f();
  }
}
