// The official TypeScript client (@dydxprotocol/v3-client, unmodified) run against the emulator.
// Usage: node ts_judge.js '<json: {host, networkId, ethPrivateKey, ...}>'
// Onboards and prints "ONBOARDED <json>"; then waits for one line on stdin (the account is
// funded meanwhile), trades and prints "RESULT <json>": what the client got back, for the
// Python test to judge. Each call records {status, data} or {status, msg}: refusals are data.
'use strict';

const Web3 = require('web3');
const { DydxClient } = require('@dydxprotocol/v3-client');

const SEVEN_DAYS_MS = 7 * 24 * 3600 * 1000;

async function attempt(fn) {
  try {
    return { status: 'ok', data: await fn() };
  } catch (error) {
    if (error.status === undefined) throw error;
    return { status: error.status, msg: error.data.errors[0].msg };
  }
}

function iso(msFromNow) {
  return new Date(Date.now() + msFromNow).toISOString();
}

function clientFor(config, extra = {}) {
  const web3 = new Web3();
  const account = web3.eth.accounts.wallet.add(config.ethPrivateKey);
  const client = new DydxClient(config.host, {
    networkId: config.networkId,
    web3,
    apiTimeout: 10000,
    ...extra,
  });
  return { client, address: account.address };
}

function order(overrides = {}) {
  return {
    market: 'BTC-USD',
    side: 'BUY',
    type: 'LIMIT',
    timeInForce: 'GTT',
    postOnly: true,
    size: '0.001',
    price: '1000',
    limitFee: '0.0015',
    expiration: iso(3600 * 1000),
    ...overrides,
  };
}

async function onboard(config) {
  const { client, address } = clientFor(config);
  const out = {};
  out.markets = await client.public.getMarkets();
  out.marketsEth = await client.public.getMarkets('ETH-USD');
  const stark = await client.onboarding.deriveStarkKey(address);
  out.stark = { publicKey: stark.publicKey, publicKeyYCoordinate: stark.publicKeyYCoordinate };
  // onboarding signed with TypedData, the client's default
  const created = await client.onboarding.createUser(
    { starkKey: stark.publicKey, starkKeyYCoordinate: stark.publicKeyYCoordinate },
    address,
  );
  out.onboarding = { user: created.user, account: created.account, apiKeyShape: Object.keys(created.apiKey).sort() };
  const recovered = await client.onboarding.recoverDefaultApiCredentials(address);
  out.recoveredEqualsServer = ['key', 'secret', 'passphrase'].every((k) => recovered[k] === created.apiKey[k]);

  // API keys: create and delete signed with the Hash method (the client's default), list with HMAC
  client.apiKeyCredentials = created.apiKey;
  client.starkPrivateKey = stark;
  const extra = await client.ethPrivate.createApiKey(address);
  out.apiKeysWithExtra = await client.private.getApiKeys();
  out.extraKey = extra.apiKey.key;
  out.deleted = await client.ethPrivate.deleteApiKey(extra.apiKey.key, address);
  out.apiKeysAfter = await client.private.getApiKeys();
  const { client: viaExtra } = clientFor(config, { apiKeyCredentials: extra.apiKey });
  out.deletedKeyRead = await attempt(() => viaExtra.private.getUser());

  out.user = await client.private.updateUser({
    username: `ts_${Date.now()}`,
    userData: { desk: 'ts' },
    isSharingAddress: true,
    languageCode: 'en',
  });
  out.second = await attempt(() => client.private.createAccount(config.secondStarkKey, config.secondStarkKeyY));
  out.accounts = await client.private.getAccounts();
  out.account = await client.private.getAccount(address);
  out.positions = await client.private.getPositions({ market: 'BTC-USD' });

  const positionId = created.account.positionId;
  const farFuture = iso(SEVEN_DAYS_MS + 60000);
  out.unfundedWithdrawal = await attempt(() => client.private.createWithdrawal(
    { amount: '1', asset: 'USDC', expiration: farFuture }, positionId));
  const { client: wrongKey } = clientFor(config, {
    apiKeyCredentials: created.apiKey,
    starkPrivateKey: config.otherStarkPrivateKey,
  });
  out.wrongKeyOrder = await attempt(() => wrongKey.private.createOrder(order(), positionId));
  out.apiKey = created.apiKey;
  return out;
}

async function trade(config) {
  const { client: signer, address } = clientFor(config);
  const stark = await signer.onboarding.deriveStarkKey(address);
  const { client } = clientFor(config, { apiKeyCredentials: config.apiKey, starkPrivateKey: stark });
  const out = {};
  const { account } = await client.private.getAccount(address);
  const positionId = account.positionId;
  out.before = account;
  out.placed = await attempt(() => client.private.createOrder(order({ clientId: 'ts-far-bid' }), positionId));
  if (out.placed.status === 'ok') {
    const id = out.placed.data.order.id;
    out.fetched = await client.private.getOrderById(id);
    out.byClientId = await client.private.getOrderByClientId('ts-far-bid');
    out.open = await client.private.getOrders({ market: 'BTC-USD', status: 'OPEN' });
    out.held = (await client.private.getAccount(address)).account;
    out.canceled = await client.private.cancelOrder(id);
  }
  const second = await client.private.createOrder(order({ clientId: 'ts-far-bid-2', side: 'SELL', price: '90000' }), positionId);
  out.secondStatus = second.order.status;
  out.cancelAll = await client.private.cancelAllOrders();
  const farFuture = iso(SEVEN_DAYS_MS + 60000);
  out.withdrawal = await attempt(() => client.private.createWithdrawal(
    { amount: '3', asset: 'USDC', expiration: farFuture }, positionId));
  const lps = await client.public.getFastWithdrawals({});
  const [lpPositionId, lp] = Object.entries(lps.liquidityProviders)[0];
  out.fastWithdrawal = await attempt(() => client.private.createFastWithdrawal({
    creditAsset: 'USDC',
    creditAmount: '2',
    debitAmount: '2',
    toAddress: address,
    lpPositionId,
    lpStarkKey: lp.starkKey,
    expiration: farFuture,
  }, positionId));
  out.transfers = await client.private.getTransfers({});
  out.after = (await client.private.getAccount(address)).account;
  return out;
}

function nextLine() {
  return new Promise((resolve) => {
    let buffered = '';
    process.stdin.on('data', (chunk) => {
      buffered += chunk;
      if (buffered.includes('\n')) resolve(buffered.split('\n')[0]);
    });
  });
}

(async () => {
  const config = JSON.parse(process.argv[2]);
  const onboarded = await onboard(config);
  process.stdout.write(`ONBOARDED ${JSON.stringify(onboarded)}\n`);
  await nextLine();
  const traded = await trade({ ...config, apiKey: onboarded.apiKey });
  process.stdout.write(`RESULT ${JSON.stringify(traded)}\n`);
  process.exit(0);
})().catch((error) => {
  process.stderr.write(`${error.stack || error}\n`);
  process.exit(1);
});
