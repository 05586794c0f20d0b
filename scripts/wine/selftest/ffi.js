// Runs under *Windows* node (Wine). argv[2] = Windows path of cbtest.dll.
// Prints one JSON line of results; exit code 0 only if the required checks pass.
'use strict';
const koffi = require('koffi'); // resolved via NODE_PATH (win32 koffi), see run-node.sh
const { setTimeout: sleep } = require('node:timers/promises');

const k32 = koffi.load('kernel32.dll');
const SetLastError = k32.func('void __stdcall SetLastError(uint32_t code)');
const GetLastError = k32.func('uint32_t __stdcall GetLastError()');
const GetCurrentThreadId = k32.func('uint32_t __stdcall GetCurrentThreadId()');

const lib = koffi.load(process.argv[2]);
const Cb = koffi.proto('int Cb(int x)');
const CbErr = koffi.proto('int CbErr(int x, uint32_t *err)');
const call_sync = lib.func('int call_sync(Cb *cb, int x, uint32_t preset, _Out_ uint32_t *after)');
const call_sync_shim = lib.func('int call_sync_shim(CbErr *cb, int x, _Out_ uint32_t *after)');
const start_thread = lib.func('int start_thread(Cb *cb, int x)');
const start_thread_shim = lib.func('int start_thread_shim(CbErr *cb, int x)');
const thread_result = lib.func('int thread_result(_Out_ uint32_t *after, _Out_ uint32_t *tid)');
const call_wait = lib.func('int call_in_thread_and_wait(Cb *cb, int x)');

const res = { platform: process.platform, node: process.version, koffi: koffi.version, mainTid: GetCurrentThreadId() };

// Start a DLL thread, wait until the JS callback ran and the thread stored its result.
async function viaThread(start, cb, x) {
  let fired;
  const firedP = new Promise((resolve) => { fired = resolve; });
  let jsTid;
  const reg = koffi.register((...a) => { jsTid = GetCurrentThreadId(); fired(); return cb(...a); },
    koffi.pointer(start === start_thread ? Cb : CbErr));
  const t0 = Date.now();
  start(reg, x);
  const ab = new AbortController(); // don't let the 5 s guard keep the loop alive
  await Promise.race([firedP, sleep(5000, null, { signal: ab.signal }).catch(() => {})]);
  ab.abort();
  const after = [0], tid = [0];
  let ret = -1;
  for (let i = 0; i < 500 && ret === -1; i++) { ret = thread_result(after, tid); if (ret === -1) await sleep(2); }
  koffi.unregister(reg);
  return { ret, ms: Date.now() - t0, dllTid: tid[0], jsTid, lastErrorSeenByDll: after[0] };
}

async function main() {
  // (a) same thread: JS SetLastError()s inside the callback, DLL reads it after.
  // Repeated: the first callback differs (koffi's lazy N-API import resolution).
  res.sync = [];
  for (let i = 0; i < 3; i++) {
    const after = [0];
    let seen;
    const ret = call_sync((x) => {
      seen = GetLastError();        // what JS sees of the DLL's preset 0xDEAD (57005)
      SetLastError(1234 + i);       // e.g. ERROR_INSUFFICIENT_BUFFER in the bridge
      return x * 2;
    }, 21, 0xDEAD, after);
    res.sync.push({ ret, jsSawPreset: seen, want: 1234 + i, dllSaw: after[0] });
  }
  // (a') same, through a native shim: JS writes the code to *err, the shim SetLastError()s it.
  const after2 = [0];
  const r2 = call_sync_shim((x, errPtr) => { koffi.encode(errPtr, 'uint32_t', 1234); return x * 2; }, 21, after2);
  res.syncShim = { ret: r2, dllSaw: after2[0] };

  // (b) callback from a CreateThread thread (koffi queues it to the main thread).
  res.thread = await viaThread(start_thread, (x) => { SetLastError(4321); return x + 1; }, 41);
  res.threadShim = await viaThread(start_thread_shim, (x, errPtr) => { koffi.encode(errPtr, 'uint32_t', 4321); return x + 1; }, 41);

  // (c) DLL starts and joins its thread inside one call, made with koffi's .async
  // (worker thread) so the main loop stays free to run the callback.
  const reg = koffi.register((x) => x + 1, koffi.pointer(Cb));
  res.asyncJoin = { ret: await new Promise((resolve, reject) =>
    call_wait.async(reg, 99, (err, v) => (err ? reject(err) : resolve(v)))) };
  koffi.unregister(reg);

  res.ok = {
    syncCallback: res.sync.every((s) => s.ret === 42),
    syncLastErrorAfterWarmup: res.sync.slice(1).every((s) => s.dllSaw === s.want),
    syncShimLastError: r2 === 42 && after2[0] === 1234,
    threadCallback: res.thread.ret === 42 && res.thread.jsTid === res.mainTid && res.thread.dllTid !== res.mainTid,
    threadShimLastError: res.threadShim.ret === 42 && res.threadShim.lastErrorSeenByDll === 4321,
    asyncJoinCallback: res.asyncJoin.ret === 100,
  };
  // Facts worth noticing if they change (not pass conditions), see NOTES.md.
  res.info = {
    firstSyncLastErrorVisible: res.sync[0].dllSaw === res.sync[0].want,
    jsSeesDllLastError: res.sync[0].jsSawPreset === 0xDEAD,
    threadDirectLastErrorVisible: res.thread.lastErrorSeenByDll === 4321,
  };
  console.log(JSON.stringify(res));
  process.exitCode = Object.values(res.ok).every(Boolean) ? 0 : 1;
}
main().catch((e) => { console.error(e); process.exitCode = 1; });
