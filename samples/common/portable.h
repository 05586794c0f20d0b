/*
 * portable.h - the operating-system plumbing shared by the isapi-gateway samples.
 *
 * ISAPI itself is the same on Windows and on Linux (isapi.h takes care of
 * that), but a few samples also sleep, start threads, count things across
 * threads or open files, and those calls differ between the two systems. This
 * header keeps the one #ifdef _WIN32 split, so that each sample shows only
 * its ISAPI logic:
 *
 *   sleep_ms(250)                      sleep (Sleep / nanosleep, resumed after a signal)
 *   counter_t n; counter_add(&n, 1)    atomic add, returns the new value (add 0 to read)
 *   counter_wait_zero(&n, 5000)        for TerminateExtension: wait until n is 0
 *   THREAD_PROC(fn, arg) { ...; THREAD_RETURN; }
 *                                      a thread function taking `void *arg`
 *   start_thread(fn, arg)              run fn(arg) on a detached thread
 *   thread_id()                        the calling thread's OS thread id
 *   THREAD_LOCAL int x;                a per-thread variable
 *   open_file(path, &err), close_file(h)
 *                                      a file HANDLE for HSE_REQ_TRANSMIT_FILE and
 *                                      HSE_REQ_VECTOR_SEND (CreateFileA / open)
 *
 * Everything is static inline, so just #include "common/portable.h"; there is
 * no library to link (the POSIX build needs -pthread, which samples/Makefile
 * passes). On Windows everything comes from <windows.h>, which isapi.h
 * includes; this header includes isapi.h itself.
 *
 * GetLastError(): on Linux it is errno (see isapi.h). sleep_ms, counter_*,
 * start_thread and thread_id are called where no error code is pending, and
 * open_file returns its error in *err rather than leaving it to be read later.
 */
#ifndef ISAPI_SAMPLES_PORTABLE_H
#define ISAPI_SAMPLES_PORTABLE_H

#include <stdint.h>

#include "isapi.h"

#ifndef _WIN32
#include <fcntl.h> /* open */
#include <pthread.h>
#include <sys/syscall.h> /* SYS_gettid */
#include <time.h>        /* nanosleep */
#include <unistd.h>      /* close, syscall */
#endif

/* Sleeps for ms milliseconds. */
static inline void sleep_ms(unsigned long ms) {
#ifdef _WIN32
  Sleep((DWORD)ms);
#else
  struct timespec ts;
  ts.tv_sec = (time_t)(ms / 1000);
  ts.tv_nsec = (long)(ms % 1000) * 1000000L;
  while (nanosleep(&ts, &ts) != 0) { /* interrupted by a signal: sleep the rest */
  }
#endif
}

/*
 * A counter shared between threads: requests or threads that may still run
 * code of the library, or parties that still have to report. Initialise it
 * like a long (static counter_t n = 0;) and change it only with counter_add.
 */
#ifdef _WIN32
typedef volatile LONG counter_t;
#else
typedef long counter_t;
#endif

/* Atomically adds n to *p and returns the new value; counter_add(p, 0) reads it. */
static inline long counter_add(counter_t *p, long n) {
#ifdef _WIN32
  return (long)InterlockedExchangeAdd(p, (LONG)n) + n;
#else
  return __atomic_add_fetch(p, n, __ATOMIC_SEQ_CST);
#endif
}

/*
 * For TerminateExtension: the server unloads the library as soon as it
 * returns, but a completion or thread that has just called
 * HSE_REQ_DONE_WITH_SESSION may still be running the last instructions of its
 * function in this library. Waits until *p is 0 (polling every 10 ms, giving
 * up after about max_ms), then 10 ms more for the last one to return.
 */
static inline void counter_wait_zero(counter_t *p, unsigned long max_ms) {
  unsigned long waited_ms = 0;
  while (counter_add(p, 0) > 0 && waited_ms < max_ms) {
    sleep_ms(10);
    waited_ms += 10;
  }
  sleep_ms(10);
}

/*
 * Threads. Define the thread function with THREAD_PROC and end it with
 * THREAD_RETURN (a thread's result is not used):
 *
 *   THREAD_PROC(worker, arg) {
 *     struct job *job = (struct job *)arg;
 *     ...
 *     THREAD_RETURN;
 *   }
 *
 * then start it with start_thread(worker, job).
 */
#ifdef _WIN32
typedef DWORD(WINAPI *thread_fn)(LPVOID);
#define THREAD_PROC(name, arg) static DWORD WINAPI name(LPVOID arg)
#define THREAD_RETURN return 0
#else
typedef void *(*thread_fn)(void *);
#define THREAD_PROC(name, arg) static void *name(void *arg)
#define THREAD_RETURN return NULL
#endif

/*
 * Starts fn(arg) on a detached thread: nobody waits for it, it ends by
 * itself. Returns 1, or 0 if no thread could be created.
 */
static inline int start_thread(thread_fn fn, void *arg) {
#ifdef _WIN32
  HANDLE h = CreateThread(NULL, 0, fn, arg, 0, NULL);
  if (h == NULL) return 0;
  CloseHandle(h); /* the thread keeps running; we just drop our handle */
  return 1;
#else
  pthread_t tid;
  pthread_attr_t attr;
  int ok;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  ok = pthread_create(&tid, &attr, fn, arg) == 0;
  pthread_attr_destroy(&attr);
  return ok;
#endif
}

/*
 * The calling thread's OS thread id: GetCurrentThreadId() on Windows, the
 * kernel task id (gettid) on Linux, as in /proc/<pid>/task/. syscall() is
 * declared in the compiler's default GNU C mode, which samples/Makefile uses.
 */
static inline unsigned long thread_id(void) {
#if defined(_WIN32)
  return (unsigned long)GetCurrentThreadId();
#elif defined(SYS_gettid)
  return (unsigned long)syscall(SYS_gettid);
#else
  return (unsigned long)(uintptr_t)pthread_self(); /* other POSIX systems */
#endif
}

/* A variable with one copy per thread: static THREAD_LOCAL int x; */
#ifdef _MSC_VER
#define THREAD_LOCAL __declspec(thread)
#else
#define THREAD_LOCAL __thread /* gcc, clang and mingw-w64 */
#endif

/*
 * Opens a file for reading, as a HANDLE for HSE_TF_INFO.hFile or a
 * HSE_VECTOR_ELEMENT_TYPE_FILE_HANDLE element: on Windows a HANDLE from
 * CreateFileA with the flags IIS documents (FILE_FLAG_SEQUENTIAL_SCAN |
 * FILE_FLAG_OVERLAPPED); elsewhere an open() file descriptor cast with
 * (HANDLE)(intptr_t)fd, which is what isapi-gateway expects there. Returns
 * INVALID_HANDLE_VALUE on failure and stores the error in *err: a Win32 code
 * on Windows, an errno value elsewhere.
 */
static inline HANDLE open_file(const char *path, unsigned long *err) {
#ifdef _WIN32
  HANDLE h = CreateFileA(path, GENERIC_READ, FILE_SHARE_READ, NULL, OPEN_EXISTING,
                         FILE_FLAG_SEQUENTIAL_SCAN | FILE_FLAG_OVERLAPPED, NULL);
  if (h == INVALID_HANDLE_VALUE) *err = (unsigned long)GetLastError();
  return h;
#else
  int fd = open(path, O_RDONLY);
  if (fd < 0) {
    *err = (unsigned long)errno; /* an errno value here, not a Win32 code */
    return INVALID_HANDLE_VALUE;
  }
  return (HANDLE)(intptr_t)fd;
#endif
}

/* Closes a handle from open_file; INVALID_HANDLE_VALUE is ignored. */
static inline void close_file(HANDLE h) {
  if (h == INVALID_HANDLE_VALUE) return;
#ifdef _WIN32
  CloseHandle(h);
#else
  close((int)(intptr_t)h);
#endif
}

#endif /* ISAPI_SAMPLES_PORTABLE_H */
