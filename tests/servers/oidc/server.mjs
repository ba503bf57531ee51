// Loopback OAuth 2.0 / OpenID Connect authorization server for agentshell's tests.
//
// Built on the real npm `oidc-provider`. Configuration comes from the environment
// (or `--name=value` arguments, which win over the environment):
//
//   PORT                 port to bind on 127.0.0.1 (0 = pick a free one; default 0)
//   DEVICE_CODE_TTL      device_code lifetime in seconds (default 600)
//   ACCESS_TOKEN_TTL     access token lifetime in seconds (default 3600)
//   REFRESH_TOKEN_TTL    refresh token lifetime in seconds (default 86400)
//   SLOW_DOWN            "1" enables a test-only middleware answering 400
//                        {"error":"slow_down"} to device-code token polls that arrive
//                        faster than SLOW_DOWN_INTERVAL for the same device_code
//   SLOW_DOWN_INTERVAL   seconds, default 4
//
// Once listening it prints one JSON line on stdout: {"issuer": "http://127.0.0.1:PORT"}.

import * as http from 'node:http';
import * as querystring from 'node:querystring';
import { randomBytes } from 'node:crypto';

import Provider from 'oidc-provider';

export const CLIENT_ID = 'agentshell-test';
const DEVICE_CODE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

function readSettings() {
  const settings = { ...process.env };
  for (const arg of process.argv.slice(2)) {
    const match = /^--([A-Za-z_]+)=(.*)$/.exec(arg);
    if (match) {
      settings[match[1].toUpperCase().replaceAll('-', '_')] = match[2];
    }
  }
  return settings;
}

function seconds(settings, name, fallback) {
  const raw = settings[name];
  if (raw === undefined || raw === '') {
    return fallback;
  }
  const value = Number(raw);
  if (!Number.isInteger(value) || value <= 0) {
    throw new TypeError(`${name} must be a positive integer number of seconds, got ${raw}`);
  }
  return value;
}

function readRawBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

// Answers slow_down to device-code polls that come faster than `intervalMs`.
function slowDownMiddleware(tokenPath, intervalMs) {
  const lastPoll = new Map();
  return async function slowDown(ctx, next) {
    if (ctx.method !== 'POST' || ctx.path !== tokenPath || !ctx.is('application/x-www-form-urlencoded')) {
      return next();
    }
    const raw = await readRawBody(ctx.req);
    // oidc-provider falls back to an upstream-parsed body when the stream is consumed.
    ctx.req.body = raw;
    const params = querystring.parse(raw);
    const deviceCode = params.device_code;
    if (params.grant_type !== DEVICE_CODE_GRANT || typeof deviceCode !== 'string') {
      return next();
    }
    const now = Date.now();
    const previous = lastPoll.get(deviceCode);
    lastPoll.set(deviceCode, now);
    if (previous !== undefined && now - previous < intervalMs) {
      ctx.status = 400;
      ctx.set('Cache-Control', 'no-store');
      ctx.body = {
        error: 'slow_down',
        error_description: 'polling too fast; increase the interval by 5 seconds',
      };
      return undefined;
    }
    return next();
  };
}

async function main() {
  const settings = readSettings();
  const port = Number(settings.PORT ?? '0');
  const deviceCodeTtl = seconds(settings, 'DEVICE_CODE_TTL', 600);
  const accessTokenTtl = seconds(settings, 'ACCESS_TOKEN_TTL', 3600);
  const refreshTokenTtl = seconds(settings, 'REFRESH_TOKEN_TTL', 86400);
  const slowDown = settings.SLOW_DOWN === '1';
  const slowDownIntervalMs = Number(settings.SLOW_DOWN_INTERVAL ?? '4') * 1000;

  // Listen first so the issuer can carry the real port when PORT=0.
  let handler = (_req, res) => {
    res.statusCode = 503;
    res.end();
  };
  const server = http.createServer((req, res) => handler(req, res));
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  const issuer = `http://127.0.0.1:${server.address().port}`;

  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: CLIENT_ID,
        client_name: 'agentshell tests',
        token_endpoint_auth_method: 'none',
        grant_types: [DEVICE_CODE_GRANT, 'refresh_token'],
        response_types: [],
        redirect_uris: [],
        application_type: 'native',
      },
    ],
    features: {
      deviceFlow: { enabled: true },
      devInteractions: { enabled: true },
      revocation: { enabled: true },
    },
    scopes: ['openid', 'offline_access'],
    claims: { openid: ['sub'] },
    ttl: {
      DeviceCode: deviceCodeTtl,
      AccessToken: accessTokenTtl,
      RefreshToken: refreshTokenTtl,
    },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    async findAccount(_ctx, id) {
      return {
        accountId: id,
        async claims() {
          return { sub: id };
        },
      };
    },
    // A refresh token whenever the granted scope holds offline_access (the default
    // policy, spelled out because the tests depend on it).
    async issueRefreshToken(_ctx, client, code) {
      return client.grantTypeAllowed('refresh_token') && code.scopes.has('offline_access');
    },
  });

  if (slowDown) {
    const tokenPath = new URL(`${issuer}/token`).pathname;
    provider.use(slowDownMiddleware(tokenPath, slowDownIntervalMs));
  }

  handler = provider.callback();

  const stop = () => {
    server.close();
    server.closeAllConnections();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);

  process.stdout.write(`${JSON.stringify({ issuer })}\n`);
}

main().catch((error) => {
  process.stderr.write(`${error?.stack ?? error}\n`);
  process.exit(1);
});
