/* Tiny PE DLL for scripts/wine/selftest.sh: exercises koffi callbacks the way
 * an ISAPI extension calls back into the bridge (ServerSupportFunction, WriteClient...).
 * Build: x86_64-w64-mingw32-gcc -shared -O2 -o cbtest.dll cbtest.c */
#include <windows.h>

typedef int (*cb_t)(int);

/* (a) Same thread. `preset` is put in LastError before the callback (can JS read
 * it?); after the callback we report what GetLastError() says (did JS's
 * SetLastError reach us, as ISAPI's GetServerVariable contract needs?). */
__declspec(dllexport) int call_sync(cb_t cb, int x, DWORD preset, DWORD *after)
{
    SetLastError(preset);
    int r = cb(x);
    *after = GetLastError();
    return r;
}

/* (a') Workaround: a native shim between the extension and JS. JS reports the
 * error through an out parameter and the shim calls SetLastError() last, after
 * koffi/V8 are done touching the thread's LastError. */
typedef int (*cb_err_t)(int, DWORD *);

static __attribute__((noinline)) int shim(cb_err_t cb, int x)
{
    DWORD err = 0;
    int r = cb(x, &err);
    SetLastError(err);
    return r;
}

__declspec(dllexport) int call_sync_shim(cb_err_t cb, int x, DWORD *after)
{
    SetLastError(0xDEAD);
    int r = shim(cb, x);
    *after = GetLastError();
    return r;
}

/* (b) Callback from a CreateThread thread, fire-and-forget (like an async
 * completion). The caller must keep the JS event loop running. With cb_err set
 * the call goes through the shim, so the error lands on *this* thread. */
static struct { cb_t cb; cb_err_t cb_err; int x; volatile LONG done; int result; DWORD after, tid; } job;

static DWORD WINAPI worker(LPVOID unused)
{
    (void)unused;
    job.tid = GetCurrentThreadId();
    SetLastError(0xBEEF);
    job.result = job.cb_err ? shim(job.cb_err, job.x) : job.cb(job.x);
    job.after = GetLastError();
    InterlockedExchange(&job.done, 1);
    return 0;
}

static int spawn(cb_t cb, cb_err_t cb_err, int x)
{
    job.cb = cb; job.cb_err = cb_err; job.x = x; job.done = 0;
    HANDLE h = CreateThread(NULL, 0, worker, NULL, 0, NULL);
    if (!h) return 0;
    CloseHandle(h);
    return 1;
}

__declspec(dllexport) int start_thread(cb_t cb, int x) { return spawn(cb, NULL, x); }
__declspec(dllexport) int start_thread_shim(cb_err_t cb, int x) { return spawn(NULL, cb, x); }

/* Poll from JS: -1 while running, else the callback's return value. */
__declspec(dllexport) int thread_result(DWORD *after, DWORD *tid)
{
    if (!job.done) return -1;
    *after = job.after; *tid = job.tid;
    return job.result;
}

/* (c) Thread started *and joined* inside the call: only safe when JS calls this
 * with koffi's .async (a worker thread), so the main loop can run the callback. */
__declspec(dllexport) int call_in_thread_and_wait(cb_t cb, int x)
{
    if (!spawn(cb, NULL, x)) return -2;
    while (!job.done) Sleep(1);
    return job.result;
}
