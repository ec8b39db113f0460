// A real OpenID provider for the login tests: oidc-provider with its own login and consent
// pages, on the port and with the clients and accounts that the config file (argv[2]) names:
// {"issuer", "port", "clients": [...], "accounts": {"<sub>": {claims..., "quirk"?}}}.
// Each start signs with a fresh RSA key, so a restart is a key rotation.
// An account's "quirk" makes the token endpoint hand out an ID token re-signed with the
// provider's own key but for another audience ("wrong-audience") or already expired
// ("expired"): what a relying party must refuse.
import { readFileSync } from 'node:fs';
import { randomBytes, randomUUID } from 'node:crypto';
import Provider from 'oidc-provider';
import { SignJWT, decodeJwt, exportJWK, generateKeyPair, importJWK } from 'jose';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const { privateKey } = await generateKeyPair('RS256', { extractable: true });
const signingKey = { ...(await exportJWK(privateKey)), kid: randomUUID(), alg: 'RS256', use: 'sig' };

const provider = new Provider(config.issuer, {
  clients: config.clients,
  jwks: { keys: [signingKey] },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  pkce: { required: () => true },
  scopes: ['openid', 'offline_access', 'profile', 'email', 'groups'],
  claims: {
    openid: ['sub'],
    profile: ['name', 'preferred_username'],
    email: ['email', 'email_verified'],
    groups: ['groups'],
  },
  features: { devInteractions: { enabled: true }, rpInitiatedLogout: { enabled: true } },
  ttl: { IdToken: 3600, AccessToken: 3600, Session: 3600, Interaction: 3600, Grant: 3600 },
  async findAccount(ctx, sub) {
    const account = config.accounts[sub];
    if (!account) return undefined;
    const { quirk, ...claims } = account;
    return { accountId: sub, claims: async () => ({ sub, ...claims }) };
  },
});

async function resign(idToken, quirk) {
  const claims = decodeJwt(idToken);
  const now = Math.floor(Date.now() / 1000);
  // azp still names the client, so only the audience check can refuse this one
  if (quirk === 'wrong-audience') Object.assign(claims, { aud: 'another-client', azp: claims.aud });
  if (quirk === 'expired') Object.assign(claims, { iat: now - 7200, exp: now - 3600 });
  const key = await importJWK(signingKey, 'RS256');
  return new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: signingKey.kid }).sign(key);
}

provider.use(async (ctx, next) => {
  await next();
  const idToken = ctx.path === '/token' && ctx.body && ctx.body.id_token;
  if (!idToken) return;
  const quirk = (config.accounts[decodeJwt(idToken).sub] || {}).quirk;
  if (quirk) ctx.body = { ...ctx.body, id_token: await resign(idToken, quirk) };
});

provider.listen(config.port, '127.0.0.1', () => {
  console.log(`oidc-provider listening on ${config.issuer}`);
});
