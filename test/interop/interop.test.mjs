// Interop: the official JavaScript client (taskcluster-client, pinned in package.json) drives
// `docker-worker local-queue` with a real `docker-worker start` behind it. Everything the client
// does here (Hawk headers, URL building, request and response shapes, artifact download with
// redirects and gzip content-encoding) is the reference implementation's, not ours.
//
//   DW_BINARY=/path/to/docker-worker node --test test/interop/interop.test.mjs
//
// Needs a Docker engine with the taskenv_pass:latest image (scripts/setup builds it).

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import taskcluster from 'taskcluster-client';

const HERE = path.dirname(fileURLToPath(import.meta.url));
// DW_BINARY relative to the working directory; the default relative to this file.
const BINARY = process.env.DW_BINARY
  ? path.resolve(process.env.DW_BINARY)
  : path.resolve(HERE, '../../build/docker-worker');
const IMAGE = 'taskenv_pass:latest';
const PROVISIONER_ID = 'interop';
// workerType: ^[a-zA-Z0-9-_]{1,38}$; unique per run so stray tasks of another run never match.
const WORKER_TYPE = `interop-${process.pid}-${Date.now().toString(36)}`;
const STARTUP_TIMEOUT_MS = 15_000;
const RESOLVE_TIMEOUT_MS = 60_000;
const POLL_INTERVAL_MS = 200;
const STOP_TIMEOUT_MS = 10_000;

// A child process whose output is kept (bounded) for failure messages.
class Child {
  constructor(name, args, env = {}) {
    this.name = name;
    this.output = '';
    this.exit = null;
    this.proc = spawn(BINARY, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    // Settles when the process is gone: 'exit', or 'error' when it could not be spawned at all.
    this.exited = new Promise(resolve => {
      this.proc.on('exit', (code, signal) => {
        this.exit ??= { code, signal };
        resolve();
      });
      this.proc.on('error', err => {
        this.output += `\n[${this.name}: ${err.message}]\n`;
        this.exit ??= { error: err.code || err.message };
        resolve();
      });
    });
    for (const stream of [this.proc.stdout, this.proc.stderr]) {
      stream.setEncoding('utf8');
      stream.on('data', chunk => {
        this.output = (this.output + chunk).slice(-64 * 1024);
      });
    }
  }

  describe() {
    const status = this.exit ? `exited ${JSON.stringify(this.exit)}` : 'running';
    return `${this.name} (${status}); last output:\n${this.output.slice(-4000)}`;
  }

  assertRunning() {
    if (this.exit) throw new Error(this.describe());
  }

  // SIGTERM, then SIGKILL if it has not exited within STOP_TIMEOUT_MS.
  async stop() {
    if (this.exit) return;
    this.proc.kill('SIGTERM');
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), STOP_TIMEOUT_MS);
    try {
      await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }
}

// Resolves with the URL of the "listening on URL" line the local-queue prints on stderr.
function waitForListening(child) {
  return new Promise((resolve, reject) => {
    let seen = '';
    let timer;
    const onData = chunk => {
      seen += chunk;
      const m = /listening on (http:\/\/\S+)\r?\n/.exec(seen);
      if (m) {
        cleanup();
        resolve(m[1].replace(/\/+$/, ''));
      }
    };
    const cleanup = () => {
      clearTimeout(timer);
      child.proc.stderr.off('data', onData);
    };
    timer = setTimeout(() => {
      cleanup();
      reject(new Error(`not listening after ${STARTUP_TIMEOUT_MS} ms: ${child.describe()}`));
    }, STARTUP_TIMEOUT_MS);
    child.proc.stderr.on('data', onData);
    child.exited.then(() => {
      cleanup();
      reject(new Error(`exited before listening: ${child.describe()}`));
    });
  });
}

// A Writable that keeps everything written to it.
function memorySink() {
  const chunks = [];
  const sink = new Writable({
    write(chunk, _encoding, callback) {
      chunks.push(Buffer.from(chunk));
      callback();
    },
  });
  sink.bytes = () => Buffer.concat(chunks);
  return sink;
}

describe('taskcluster-client@87.1.3 against docker-worker local-queue', () => {
  const tempDirs = [];
  let localQueue;
  let worker;
  let rootUrl;
  let credentials;
  let queue;

  before(async () => {
    const dataDir = await mkdtemp(path.join(tmpdir(), 'dw-interop-queue-'));
    const workDir = await mkdtemp(path.join(tmpdir(), 'dw-interop-work-'));
    tempDirs.push(dataDir, workDir);

    localQueue = new Child('local-queue', [
      'local-queue', '--listen', '127.0.0.1:0', '--data', dataDir,
    ]);
    rootUrl = await waitForListening(localQueue);

    const clients = JSON.parse(await readFile(path.join(dataDir, 'clients.json'), 'utf8'));
    assert.ok(Array.isArray(clients) && clients.length > 0, 'clients.json lists a client');
    credentials = { clientId: clients[0].clientId, accessToken: clients[0].accessToken };

    worker = new Child('worker', [
      'start',
      '--root-url', rootUrl,
      '--provisioner-id', PROVISIONER_ID,
      '--worker-type', WORKER_TYPE,
      '--worker-group', 'interop',
      '--worker-id', `interop-${process.pid}`,
      '--capacity', '1',
      '--work-dir', workDir,
    ], {
      TASKCLUSTER_CLIENT_ID: credentials.clientId,
      TASKCLUSTER_ACCESS_TOKEN: credentials.accessToken,
    });

    queue = new taskcluster.Queue({ rootUrl, credentials, retries: 2 });
  });

  after(async () => {
    // Both at once: the worker answers SIGTERM only once its claimWork long poll (20 s) returns,
    // and the local-queue ends open long polls when it stops.
    await Promise.all([worker?.stop(), localQueue?.stop()]);
    await Promise.allSettled(tempDirs.map(d => rm(d, { recursive: true, force: true })));
  });

  function taskDefinition(command, extra = {}) {
    return {
      provisionerId: PROVISIONER_ID,
      workerType: WORKER_TYPE,
      created: taskcluster.fromNow('0 seconds'),
      deadline: taskcluster.fromNow('10 minutes'),
      metadata: {
        name: 'docker-worker interop',
        description: 'created by test/interop/interop.test.mjs with taskcluster-client',
        owner: 'interop@example.com',
        source: 'https://github.com/taskcluster/docker-worker',
      },
      payload: { image: IMAGE, command, maxRunTime: 60, ...extra },
    };
  }

  // Polls queue.status every POLL_INTERVAL_MS until the task is resolved (bounded).
  async function waitForResolution(taskId) {
    const deadline = Date.now() + RESOLVE_TIMEOUT_MS;
    let last;
    for (;;) {
      last = (await queue.status(taskId)).status;
      if (last.state === 'completed' || last.state === 'failed' || last.state === 'exception') {
        return last;
      }
      worker.assertRunning();
      localQueue.assertRunning();
      if (Date.now() > deadline) {
        throw new Error(`task ${taskId} not resolved after ${RESOLVE_TIMEOUT_MS} ms ` +
          `(last status ${JSON.stringify(last)}); ${worker.describe()}`);
      }
      await delay(POLL_INTERVAL_MS);
    }
  }

  async function download(taskId, name) {
    const sink = memorySink();
    const contentType = await taskcluster.downloadArtifact({
      taskId, runId: 0, name, queue, streamFactory: async () => sink, retries: 0,
    });
    return { bytes: sink.bytes(), contentType };
  }

  // The passing task: created once, shared by the tests that inspect it.
  const passTaskId = taskcluster.slugid();
  let passTask;
  function passTaskResolved() {
    passTask ??= (async () => {
      const definition = taskDefinition(
        ['sh', '-c', "echo hello-interop; mkdir -p /out; printf 'xfoo\\n' > /out/a.txt"],
        { artifacts: { 'public/a.txt': { type: 'file', path: '/out/a.txt' } } },
      );
      const created = await queue.createTask(passTaskId, definition);
      assert.equal(created.status.taskId, passTaskId);
      assert.equal(created.status.state, 'pending');
      assert.equal(created.status.provisionerId, PROVISIONER_ID);
      assert.equal(created.status.workerType, WORKER_TYPE);
      return { definition, status: await waitForResolution(passTaskId) };
    })();
    return passTask;
  }

  it('refuses createTask from a client without credentials', async () => {
    const anonymous = new taskcluster.Queue({ rootUrl, retries: 0 });
    const taskId = taskcluster.slugid();
    await assert.rejects(
      anonymous.createTask(taskId, taskDefinition(['true'])),
      err => {
        assert.ok([401, 403].includes(err.statusCode),
          `statusCode ${err.statusCode} (${err.code}): ${err.message}`);
        return true;
      },
    );
    // Nothing was created.
    await assert.rejects(queue.status(taskId), err => err.statusCode === 404);
  });

  it('runs a task created by the client to completion', async () => {
    const { status } = await passTaskResolved();
    assert.equal(status.state, 'completed', JSON.stringify(status));
    assert.equal(status.runs.length, 1);
    assert.equal(status.runs[0].state, 'completed');
    assert.equal(status.runs[0].reasonResolved, 'completed');
    assert.equal(status.runs[0].workerGroup, 'interop');
  });

  it('returns the task definition with defaults filled in', async () => {
    const { definition } = await passTaskResolved();
    const task = await queue.task(passTaskId);
    assert.equal(task.provisionerId, PROVISIONER_ID);
    assert.equal(task.workerType, WORKER_TYPE);
    assert.equal(task.taskQueueId, `${PROVISIONER_ID}/${WORKER_TYPE}`);
    assert.equal(new Date(task.created).getTime(), definition.created.getTime());
    assert.equal(new Date(task.deadline).getTime(), definition.deadline.getTime());
    assert.deepEqual(task.metadata, definition.metadata);
    assert.deepEqual(task.payload, JSON.parse(JSON.stringify(definition.payload)));
    // Defaults of the reference queue's createTask.
    assert.equal(task.schedulerId, '-');
    assert.equal(task.taskGroupId, passTaskId);
    assert.equal(task.priority, 'lowest');
    assert.equal(task.retries, 5);
    assert.equal(task.requires, 'all-completed');
    assert.equal(task.projectId, 'none');
    assert.deepEqual(task.dependencies, []);
    assert.deepEqual(task.routes, []);
    assert.deepEqual(task.scopes, []);
    assert.deepEqual(task.tags, {});
    assert.deepEqual(task.extra, {});
    const oneYearAfterDeadline = new Date(definition.deadline);
    oneYearAfterDeadline.setFullYear(oneYearAfterDeadline.getFullYear() + 1);
    assert.equal(new Date(task.expires).getTime(), oneYearAfterDeadline.getTime());
  });

  it('lists the task artifact and both logs', async () => {
    await passTaskResolved();
    const { artifacts } = await queue.listArtifacts(passTaskId, 0);
    const names = artifacts.map(a => a.name);
    for (const name of ['public/a.txt', 'public/logs/live.log', 'public/logs/live_backing.log']) {
      assert.ok(names.includes(name), `${name} in ${JSON.stringify(names)}`);
    }
    for (const a of artifacts) {
      assert.equal(typeof a.storageType, 'string');
      assert.equal(typeof a.contentType, 'string');
      assert.ok(!Number.isNaN(Date.parse(a.expires)), `expires of ${a.name}: ${a.expires}`);
    }
  });

  it('downloads the file artifact byte for byte', async () => {
    await passTaskResolved();
    const { bytes, contentType } = await download(passTaskId, 'public/a.txt');
    assert.deepEqual(bytes, Buffer.from('xfoo\n'));
    assert.match(contentType, /^text\/plain/);
    // The bytes above came through gzip content-encoding, decoded by the client's HTTP stack.
    const { url } = await queue.artifact(passTaskId, 0, 'public/a.txt');
    const res = await fetch(url, { headers: { 'accept-encoding': 'gzip' } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-encoding'), 'gzip');
    await res.arrayBuffer();
  });

  it('downloads the backing log with the task output and the result line', async () => {
    await passTaskResolved();
    const log = (await download(passTaskId, 'public/logs/live_backing.log')).bytes.toString('utf8');
    assert.match(log, /hello-interop/);
    assert.match(log, /Successful task run with exit code: 0/);
    const liveLog = (await download(passTaskId, 'public/logs/live.log')).bytes.toString('utf8');
    assert.equal(liveLog, log);
  });

  it('accepts the client\'s signed URLs (Hawk bewit) and refuses tampered ones', async () => {
    await passTaskResolved();
    // listArtifacts needs queue:list-artifacts:<taskId>:<runId>, so only the bewit authorizes it.
    const signed = await queue.buildSignedUrl(queue.listArtifacts, passTaskId, 0);
    const unsigned = queue.buildUrl(queue.listArtifacts, passTaskId, 0);
    const ok = await fetch(signed);
    assert.equal(ok.status, 200, await ok.clone().text());
    const names = (await ok.json()).artifacts.map(a => a.name);
    assert.ok(names.includes('public/a.txt'), JSON.stringify(names));
    const anonymous = await fetch(unsigned);
    await anonymous.arrayBuffer();
    assert.ok([401, 403].includes(anonymous.status), `unsigned: ${anonymous.status}`);
    // Same bewit with one character of its MAC changed (bewit = base64url("id\\exp\\mac\\ext")).
    const tampered = await fetch(signed.replace(/bewit=([^&]*)/, (_, bewit) => {
      const parts = Buffer.from(bewit, 'base64url').toString('utf8').split('\\');
      parts[2] = (parts[2][0] === 'A' ? 'B' : 'A') + parts[2].slice(1);
      return `bewit=${Buffer.from(parts.join('\\')).toString('base64url')}`;
    }));
    await tampered.arrayBuffer();
    assert.ok([401, 403].includes(tampered.status), `tampered: ${tampered.status}`);

    // getArtifact through a signed URL: the redirect is followed to the stored bytes.
    const artifactUrl = await queue.buildSignedUrl(queue.getArtifact, passTaskId, 0, 'public/a.txt');
    const res = await fetch(artifactUrl);
    assert.equal(res.status, 200);
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), Buffer.from('xfoo\n'));
  });

  it('resolves a task whose command exits 1 as failed', async () => {
    const taskId = taskcluster.slugid();
    await queue.createTask(taskId, taskDefinition(['sh', '-c', 'echo failing-on-purpose; exit 1']));
    const status = await waitForResolution(taskId);
    assert.equal(status.state, 'failed', JSON.stringify(status));
    assert.equal(status.runs[0].reasonResolved, 'failed');
    const log = (await download(taskId, 'public/logs/live_backing.log')).bytes.toString('utf8');
    assert.match(log, /failing-on-purpose/);
  });
});
