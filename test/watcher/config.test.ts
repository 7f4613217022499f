// Configuration: flag > environment > default, validation with clear errors, a frozen result.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  ConfigError,
  DATABASE_URL_OPTION,
  loadListenConfig,
  loadRunConfig,
  optionsHelp,
  parseAddr,
  parseOptions,
  RUN_OPTIONS,
  type OptionSpec,
} from '../../src/lib/config.js';

const URL = 'postgres://sync:s3cret@db.example:5432/ssvirt';

describe('watcher config', () => {
  test('defaults', () => {
    const c = loadRunConfig([], { DATABASE_URL: URL });
    assert.equal(c.databaseUrl, URL);
    assert.deepEqual(c.namespaces, []);
    assert.equal(c.batchMaxEvents, 500);
    assert.equal(c.reconcileIntervalMs, 10_000);
    assert.equal(c.listPageSize, 500);
    assert.equal(c.leaderPollMs, 1000);
    assert.equal(c.migrate, true);
    assert.deepEqual(c.metricsAddr, { host: undefined, port: 9090 });
    assert.ok(c.watchIdleTimeoutMs > 60_000, 'idle timeout above the usual one-minute bookmark interval');
    assert.match(c.holder, /:\d+$/);
    assert.equal(c.kubeconfig, null);
  });

  test('a flag beats the environment, which beats the default', () => {
    const env = { DATABASE_URL: URL, BATCH_MAX_EVENTS: '100', BATCH_MAX_WAIT_MS: '50' };
    const c = loadRunConfig(['--batch-max-events', '7'], env);
    assert.equal(c.batchMaxEvents, 7);
    assert.equal(c.batchMaxWaitMs, 50);
    assert.equal(loadRunConfig(['--batch-max-events=9'], env).batchMaxEvents, 9);
    assert.equal(loadRunConfig(['--database-url', 'postgresql://x@y/z'], env).databaseUrl, 'postgresql://x@y/z');
  });

  test('lists, booleans and addresses', () => {
    const c = loadRunConfig(['--no-migrate', '--metrics-addr', '127.0.0.1:0'], { DATABASE_URL: URL, WATCH_NAMESPACES: ' b, a ,,b ' });
    assert.deepEqual(c.namespaces, ['a', 'b']);
    assert.equal(c.migrate, false);
    assert.deepEqual(c.metricsAddr, { host: '127.0.0.1', port: 0 });
    assert.equal(loadRunConfig([], { DATABASE_URL: URL, MIGRATE: 'false' }).migrate, false);
    assert.equal(loadRunConfig([], { DATABASE_URL: URL, METRICS_PORT: '9191' }).metricsAddr?.port, 9191);
    assert.equal(loadRunConfig([], { DATABASE_URL: URL, METRICS_ADDR: 'off' }).metricsAddr, null);
    assert.deepEqual(parseAddr(':8080'), { host: undefined, port: 8080 });
    assert.deepEqual(parseAddr('[::1]:8080'), { host: '::1', port: 8080 });
  });

  test('the result is frozen', () => {
    const c = loadRunConfig([], { DATABASE_URL: URL });
    assert.ok(Object.isFrozen(c));
    assert.ok(Object.isFrozen(c.namespaces));
    assert.throws(() => {
      (c as { batchMaxEvents: number }).batchMaxEvents = 1;
    });
  });

  test('invalid values are clear errors', () => {
    const cases: Array<[string[], Record<string, string>, RegExp]> = [
      [[], {}, /DATABASE_URL .*required/],
      [[], { DATABASE_URL: 'mysql://x' }, /postgres/],
      [['--batch-max-events', 'many'], { DATABASE_URL: URL }, /--batch-max-events="many": expected an integer/],
      [[], { DATABASE_URL: URL, BATCH_MAX_EVENTS: '0' }, /BATCH_MAX_EVENTS="0": must be >= 1/],
      [[], { DATABASE_URL: URL, LIST_PAGE_SIZE: '1.5' }, /LIST_PAGE_SIZE/],
      [[], { DATABASE_URL: URL, MIGRATE: 'maybe' }, /expected true or false/],
      [[], { DATABASE_URL: URL, LOG_LEVEL: 'loud' }, /LOG_LEVEL/],
      [[], { DATABASE_URL: URL, METRICS_ADDR: 'x:y' }, /METRICS_ADDR/],
      [[], { DATABASE_URL: URL, BACKOFF_INITIAL_MS: '5000', BACKOFF_MAX_MS: '100' }, /BACKOFF_MAX_MS/],
      [['--bogus'], { DATABASE_URL: URL }, /unknown option --bogus/],
      [['stray'], { DATABASE_URL: URL }, /unexpected argument/],
      [['--list-page-size'], { DATABASE_URL: URL }, /needs a value/],
    ];
    for (const [argv, env, message] of cases) {
      assert.throws(() => loadRunConfig(argv, env), (err: Error) => err instanceof ConfigError && message.test(err.message), `${argv} ${JSON.stringify(env)}`);
    }
  });

  test('errors never echo the database URL', () => {
    assert.throws(
      () => loadRunConfig(['--database-url', 'mysql://u:hunter2@h/d'], {}),
      (err: Error) => err instanceof ConfigError && /DATABASE_URL/.test(err.message) && /postgres/i.test(err.message) && !err.message.includes('hunter2'),
    );
  });

  test('a secret option that fails validation is redacted in the error; a plain one is quoted', () => {
    const spec: OptionSpec = { key: 'token', flag: '--token', env: ['TOKEN'], type: 'int', default: null, help: 'a secret number' };
    assert.throws(() => parseOptions([{ ...spec, secret: true }], ['--token', 'hunter2'], {}),
      (err: Error) => err instanceof ConfigError && err.message === 'invalid --token=[redacted]: expected an integer');
    assert.throws(() => parseOptions([{ ...spec, secret: true }], [], { TOKEN: 'hunter2' }),
      (err: Error) => err instanceof ConfigError && err.message === 'invalid TOKEN=[redacted]: expected an integer');
    assert.throws(() => parseOptions([spec], ['--token', 'hunter2'], {}),
      (err: Error) => err instanceof ConfigError && err.message === 'invalid --token="hunter2": expected an integer');
    assert.equal(DATABASE_URL_OPTION.secret, true, 'the database URL is a secret option');
  });

  test('listen options', () => {
    const c = loadListenConfig(['--since', '42'], { DATABASE_URL: URL });
    assert.equal(c.since, 42);
    assert.equal(c.channel, 'vm_changed');
    assert.equal(loadListenConfig([], { DATABASE_URL: URL }).since, null);
    assert.throws(() => loadListenConfig(['--since', '-1'], { DATABASE_URL: URL }), ConfigError);
  });

  test('--help lists every option with its variable and default', () => {
    const help = optionsHelp(RUN_OPTIONS);
    for (const spec of RUN_OPTIONS) {
      assert.ok(help.includes(spec.flag), spec.flag);
      for (const env of spec.env) assert.ok(help.includes(env), env);
    }
    assert.match(help, /BATCH_MAX_EVENTS .*\[default: 500\]/);
    assert.match(help, /--no-migrate/);
  });
});
