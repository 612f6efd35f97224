// Token hashes, constant-time lookup, roles; where hashes come from (config, tokens file).
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { actorOf, createAuthenticator, hashToken, loadApiTokens, mayAccess } from '../../src/api/auth.js';
import { parseConfig } from '../../src/config/load.js';
import { API_TOKENS, TOKENS } from '../consent/stack.js';
import { tempDir } from '../helpers/temp-dir.js';

t.test('authenticates by hash; roles and scope', async (t) => {
  const auth = createAuthenticator(API_TOKENS);
  const acme = auth(TOKENS.acme);
  t.same(acme, { role: 'tenant', tenant: 'acme', tokenId: 'acme-admin' });
  t.same(auth(TOKENS.operator), { role: 'operator', tokenId: 'ops' });
  t.equal(auth(undefined), undefined);
  t.equal(auth(TOKENS.acme + 'x'), undefined);
  t.equal(auth('short'), undefined);
  t.equal(auth(hashToken(TOKENS.acme)), undefined, 'the hash itself is not a token');
  t.ok(mayAccess(acme!, 'acme'));
  t.notOk(mayAccess(acme!, 'globex'));
  t.ok(mayAccess(auth(TOKENS.operator)!, 'globex'));
  t.equal(actorOf(acme!), 'tenant:acme:acme-admin');
  t.equal(hashToken('abc'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
});

t.test('config: token hashes inline and in a tokens file, validated', async (t) => {
  const base = { tenants: [{ id: 'acme', keyId: 'k1', keyEnv: 'K' }] };
  const env = { K: 'a10f'.repeat(16) };
  const ok = parseConfig(
    {
      ...base,
      api: { enabled: true, tokens: [{ id: 'a', role: 'tenant', tenant: 'acme', sha256: hashToken(TOKENS.acme) }] },
    },
    env,
    '(test)',
  );
  t.equal(ok.config.api.tokens.length, 1);
  t.throws(
    () =>
      parseConfig({ ...base, api: { tokens: [{ id: 'a', role: 'tenant', sha256: hashToken('x') }] } }, env, '(test)'),
    /api\.tokens\.0\.tenant/,
    'a tenant token names its tenant',
  );
  t.throws(
    () =>
      parseConfig(
        { ...base, api: { tokens: [{ id: 'a', role: 'tenant', tenant: 'globex', sha256: hashToken('x') }] } },
        env,
        '(test)',
      ),
    /api\.tokens\.0\.tenant/,
    'a configured tenant',
  );
  t.throws(
    () =>
      parseConfig({ ...base, api: { tokens: [{ id: 'a', role: 'operator', sha256: 'not-a-hash' }] } }, env, '(test)'),
    /sha256/,
  );
  t.throws(
    () => parseConfig({ ...base, api: { tokens: [{ id: 'a', role: 'operator', token: 'plain' }] } }, env, '(test)'),
    /api\.tokens\.0/,
    'no plain tokens',
  );
  t.throws(
    () => parseConfig({ ...base, consent: { extensions: { globex: ['1001'] } } }, env, '(test)'),
    /consent\.extensions\.globex/,
  );

  const dir = tempDir(t, 'tokens');
  const file = join(dir, 'tokens.json');
  writeFileSync(file, JSON.stringify([{ id: 'ops', role: 'operator', sha256: hashToken(TOKENS.operator) }]));
  const all = loadApiTokens({ tokens: ok.config.api.tokens, tokensFile: file }, ['acme']);
  t.same(
    all.map((x) => x.id),
    ['a', 'ops'],
  );
  writeFileSync(file, JSON.stringify([{ id: 'ops', role: 'tenant', tenant: 'nosuch', sha256: hashToken('x') }]));
  t.throws(() => loadApiTokens({ tokens: [], tokensFile: file }, ['acme']), { code: 'GW_CONFIG_INVALID' });
  writeFileSync(file, '{');
  t.throws(() => loadApiTokens({ tokens: [], tokensFile: file }, ['acme']), /api\.tokensFile/);
  t.throws(
    () => loadApiTokens({ tokens: [ok.config.api.tokens[0]!, ok.config.api.tokens[0]!] }, ['acme']),
    /unique token id/,
  );
});
