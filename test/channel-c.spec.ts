// The channel with a C end: examples/channel-echo.c, which knows only the layout the README
// documents, answers every record; records cross intact both ways, whichever way each end
// sleeps, and a C end killed is an error at the Node end.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ChannelReader, ChannelWriter, IPC_STAT, shmctl } from '../lib';
import { packageRoot } from '../lib/native';
import { haveCompiler } from '../tools/compile-c';
import { recordOf } from './fixtures/channel-end';
import { compileC } from './helpers';

describe('channel with a C end', function () {
  this.timeout(60000);
  let program = '';
  const ends: Array<ChannelReader | ChannelWriter> = [];
  const peers: ChildProcess[] = [];
  before(function () {
    if (!haveCompiler()) this.skip();
    program = compileC(readFileSync(join(packageRoot, 'examples', 'channel-echo.c'), 'utf8'));
  });
  afterEach(async () => {
    for (const end of ends.splice(0)) end.close();
    for (const peer of peers.splice(0)) {
      if (peer.exitCode === null && peer.signalCode === null) {
        peer.kill('SIGKILL');
        await once(peer, 'exit');
      }
    }
  });

  /** Two channels to a C echo: requests out, answers back. */
  async function echo(capacity: number) {
    const requests = ChannelWriter.create(null, { capacity });
    ends.push(requests);
    const answers = ChannelReader.create(null, { capacity });
    ends.push(answers);
    const peer = spawn(program, [String(requests.id), String(answers.id)], { stdio: ['ignore', 'inherit', 'inherit'] });
    peers.push(peer);
    const exited = once(peer, 'exit');
    await Promise.all([requests.connected, answers.connected]);
    return { requests, answers, peer, exited };
  }

  /** Stops `peer` for `ms`, while this thread may block: another process wakes it. */
  function pause(peer: ChildProcess, ms: number): void {
    peer.kill('SIGSTOP');
    spawn('sh', ['-c', `sleep ${ms / 1000}; kill -CONT ${peer.pid}`], { stdio: 'ignore' });
  }

  it('answers records of random sizes, wrapping the ring, with promise calls at both ends at once', async () => {
    const count = 20_000;
    const { requests, answers, exited } = await echo(4096);
    const sending = (async () => {
      for (let i = 0; i < count; i++) await requests.send(recordOf(i, requests.maxMessageSize));
      requests.close();
    })();
    let next = 0;
    for await (const answer of answers) {
      assert.ok(answer.equals(recordOf(next, requests.maxMessageSize)), `answer ${next} is record ${next}, intact`);
      next++;
    }
    await sending;
    assert.equal(next, count);
    assert.deepEqual(await exited, [0, null]);
  });

  it('wakes a sleeping C end, and is woken by it, on the futex and on the doorbell', async () => {
    const { requests, answers, peer, exited } = await echo(4096);
    for (let i = 0; i < 20; i++) {
      const record = recordOf(i, 1000);
      // The C end falls asleep on its doorbell, which the next send rings.
      await new Promise((resolve) => setTimeout(resolve, 5));
      if (i % 2 === 0) {
        // This end sleeps on the futex, until the C end (stopped meanwhile) answers.
        pause(peer, 30);
        requests.sendSync(record);
        assert.ok(answers.receiveSync({ timeout: 10_000 })!.equals(record));
      } else {
        // This end sleeps on its doorbell.
        pause(peer, 30);
        await requests.send(record);
        assert.ok((await answers.receive())!.equals(record));
      }
    }
    requests.close();
    assert.equal(await answers.receive(), null);
    assert.deepEqual(await exited, [0, null]);
  });

  it('fails within 100 ms when the C end is killed, and the kernel frees the segments', async () => {
    const { requests, answers, peer, exited } = await echo(4096);
    await requests.send('one');
    assert.equal((await answers.receive())!.toString(), 'one');
    const waiting = answers.receive();
    const killed = performance.now();
    peer.kill('SIGKILL');
    await assert.rejects(waiting, { code: 'ERR_CHANNEL_PEER_GONE' });
    const noticed = performance.now() - killed;
    assert.ok(noticed < 100, `noticed after ${noticed.toFixed(1)} ms`);
    await exited;
    const ids = [requests.id, answers.id];
    requests.close();
    answers.close();
    for (const id of ids) assert.throws(() => shmctl(id, IPC_STAT), { code: 'EINVAL' });
  });
});
