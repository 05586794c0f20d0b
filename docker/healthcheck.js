'use strict';
// Container HEALTHCHECK without curl or wget in the image.
//
// ISAPI_HEALTHCHECK picks the probe:
//   http://host:port/path   GET, healthy on 2xx (the gateway's /healthz)
//   tcp://host:port         a TCP connect succeeds (a bridge)
//   unix:/path              a unix-socket connect succeeds (a bridge on a socket)
// Unset: the gateway's admin port, then its main port, as the defaults have them.
const http = require('node:http');
const net = require('node:net');

const TIMEOUT_MS = 2500;

function probeHttp(url) {
  return new Promise((resolve) => {
    const req = http.get(url, { timeout: TIMEOUT_MS }, (res) => {
      res.resume();
      resolve(res.statusCode >= 200 && res.statusCode < 300);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

function probeConnect(options) {
  return new Promise((resolve) => {
    const socket = net.connect(options);
    socket.setTimeout(TIMEOUT_MS, () => socket.destroy());
    socket.on('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
    socket.on('close', () => resolve(false));
  });
}

function probe(target) {
  if (target.startsWith('unix:')) return probeConnect({ path: target.slice('unix:'.length) });
  if (target.startsWith('tcp://')) {
    const { hostname, port } = new URL(target);
    return probeConnect({ host: hostname, port: Number(port) });
  }
  return probeHttp(target);
}

async function main() {
  const targets = process.env.ISAPI_HEALTHCHECK
    ? [process.env.ISAPI_HEALTHCHECK]
    : ['http://127.0.0.1:9100/healthz', 'http://127.0.0.1:8080/healthz'];
  for (const target of targets) {
    if (await probe(target)) process.exit(0);
  }
  process.exit(1);
}

main();
