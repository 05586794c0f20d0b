// Network probes for selftest.sh. Modes:
//   tcp-server <portfile>   (Wine)  listen on 127.0.0.1:0, write port, reply "PONG:<data>"
//   tcp-client <port>       (Linux) send "ping", expect "PONG:ping"
//   pipe-server <name> <readyfile> (Wine)  same protocol on \\.\pipe\<name>
//   pipe-client <name>      (Wine)
'use strict';
const net = require('node:net');
const fs = require('node:fs');
const [mode, a, b] = process.argv.slice(2);
const die = (m) => { console.error(m); process.exit(1); };
setTimeout(() => die(`${mode}: timeout`), 15000).unref();

function serve(listenArg, onListening) {
  const srv = net.createServer((s) => {
    s.once('data', (d) => s.end('PONG:' + d));
    s.on('close', () => srv.close());   // one client, then exit
  });
  srv.on('error', (e) => die(`${mode}: ${e.stack}`));
  srv.listen(listenArg, () => onListening(srv));
}

function ask(connectArg) {
  const t0 = process.hrtime.bigint();
  const s = net.connect(connectArg, () => s.write('ping'));
  let got = '';
  s.on('data', (d) => (got += d));
  s.on('error', (e) => die(`${mode}: ${e.stack}`));
  s.on('close', () => {
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    console.log(`${mode}: got ${JSON.stringify(got)} in ${ms.toFixed(1)} ms`);
    process.exitCode = got === 'PONG:ping' ? 0 : 1;
  });
}

const pipePath = (n) => `\\\\.\\pipe\\${n}`;
if (mode === 'tcp-server') serve({ host: '127.0.0.1', port: 0 }, (s) => fs.writeFileSync(a, String(s.address().port)));
else if (mode === 'tcp-client') ask({ host: '127.0.0.1', port: Number(a) });
else if (mode === 'pipe-server') serve(pipePath(a), () => fs.writeFileSync(b, pipePath(a)));
else if (mode === 'pipe-client') ask(pipePath(a));
else die(`unknown mode ${mode}`);
