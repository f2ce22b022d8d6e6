// The @kubernetes/client-node side of podlink-bench; uses $KUBECONFIG.
//   node client.mjs exec-stdout BYTES          exec `head -c BYTES /dev/zero` in pod demo, count stdout
//   node client.mjs watch NAMESPACE DELETES    informer; prints `synced N`, then `deleted DELETES`
import { Writable } from 'node:stream';
import * as k8s from '@kubernetes/client-node';

const kc = new k8s.KubeConfig();
kc.loadFromDefault();
const [mode, arg1, arg2] = process.argv.slice(2);

function fail(message) {
  process.stderr.write(`client-node: ${message}\n`);
  process.exit(1);
}

if (mode === 'exec-stdout') {
  const want = Number(arg1);
  let got = 0;
  const stdout = new Writable({ write(chunk, _enc, done) { got += chunk.length; done(); } });
  const ws = await new k8s.Exec(kc).exec('default', 'demo', undefined, ['head', '-c', String(want), '/dev/zero'],
    stdout, null, null, false, (status) => {
      if (status.status !== 'Success') fail(`status ${JSON.stringify(status)}`);
    });
  ws.on('close', () => {
    if (got !== want) fail(`received ${got} of ${want} bytes`);
    process.exit(0);
  });
} else if (mode === 'watch') {
  const namespace = arg1;
  const expect = Number(arg2);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const informer = k8s.makeInformer(kc, `/api/v1/namespaces/${namespace}/pods`,
    () => core.listNamespacedPod({ namespace }));
  let deletes = 0;
  informer.on('delete', () => { deletes += 1; if (deletes === expect) console.log(`deleted ${deletes}`); });
  informer.on('error', (err) => fail(`informer: ${err}`));
  await informer.start();
  console.log(`synced ${informer.list().length}`);
} else {
  fail(`unknown mode ${mode}`);
}
