/* parallel.c — the runtime's threads, and the kernels' scratch memory.
 *
 * A kernel that has enough work cuts it into tasks and calls
 * nnrt_parallel(fn, ctx, ntasks): fn(ctx, task) runs once for every task, on
 * the calling thread and on a pool of worker threads, and the call returns
 * when all are done. Tasks go to whichever thread asks first; the kernels
 * make tasks whose results do not depend on the thread that runs them, so a
 * run gives the same bits with any number of threads.
 *
 * The pool starts at the first call that needs it, with NNRT_THREADS threads
 * (the environment) or one per online core; nnrt_set_threads changes it.
 * Between calls a worker spins for a short while (SPIN_CHECKS pauses)
 * before it sleeps on a condition variable: calls that come back to back
 * find it awake, and the spin is kept short because a spinning worker takes
 * a core from the caller's own serial work whenever another program wants
 * that core. It looks for a job after every pause, so a hand-over to a
 * spinning worker is quick; the data a task reads still has to move
 * between the cores' caches, so kernels share only large work
 * (NNRT_PAR_MACS). Workers never exit; the process's exit ends them.
 *
 * One job at a time: a call made while another thread's job runs, or from
 * inside a task, runs its tasks on the calling thread.
 *
 * Scratch: nnrt_scratch(slot, n) returns this thread's buffer number slot:
 * a part of the workspace a generated model plans and allocates with its
 * memory (sizing/workspace.c, nnrt_workspace_use), or, for a kernel called
 * without one or asking more than it holds, a buffer of the thread's own
 * (nnrt_alloc), reallocated whenever a larger size is asked and never
 * freed: the only allocation a kernel makes. A kernel keeps nothing in it
 * between calls.
 */
#include "nnrt.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

enum {
    MAX_THREADS = 64,
    SPIN_CHECKS = 2048,     /* a worker's wait before it sleeps: a pause between checks */
    SPIN_YIELD = 256,       /* the caller's wait for the workers before it yields the core */
};

#if defined(__x86_64__) || defined(__i386__)
#define cpu_relax() __builtin_ia32_pause()
#else
#define cpu_relax() ((void)0)
#endif

/* The pool. A job is open from when the caller publishes it until the caller
 * has run out of tasks. Worker w is told about a job by go[w]; it joins
 * (active + 1), and takes tasks only if that job is still open. The caller
 * closes the job and waits for the workers that joined: a worker that the
 * system has not yet scheduled when the job closes is not waited for, which
 * matters on a busy machine. */
static struct {
    pthread_mutex_t job_lock;           /* held by the thread whose job runs */
    pthread_mutex_t sleep_lock;         /* with wake: for sleeping workers */
    pthread_cond_t wake;
    int nthreads;                       /* threads a job may use, caller included; 0: not chosen yet */
    int started;                        /* threads running, caller included */
    unsigned gen;
    /* what the threads share, a cache line each, so that a write to one
     * does not take the others away from the cores that read them */
    _Alignas(64) struct {
        void (*fn)(void *ctx, int task);    /* the current job */
        void *ctx;
        int ntasks;
        int chunk;                      /* tasks taken at a time */
    } job;
    _Alignas(64) atomic_int next;       /* the next task to hand out */
    _Alignas(64) atomic_uint open;      /* the generation of the open job, 0: none */
    _Alignas(64) atomic_int active;     /* workers inside a job */
    _Alignas(64) atomic_int sleepers;
    struct {
        _Alignas(64) atomic_uint v;     /* the latest job worker w was told about */
    } go[MAX_THREADS];
} pool = {.job_lock = PTHREAD_MUTEX_INITIALIZER, .sleep_lock = PTHREAD_MUTEX_INITIALIZER,
          .wake = PTHREAD_COND_INITIALIZER};

static _Thread_local int in_task;       /* inside fn: nested calls run inline */
static _Thread_local int worker_id;     /* 1 .. in a worker of the pool, 0 elsewhere */
/* a job of this thread's left running (nnrt_spawn): the workers take its
 * tasks while the caller goes on; nnrt_join takes the tasks none has taken
 * and waits for the rest */
static _Thread_local int spawned;

/* NNRT_THREADS, else the online cores, within [1, MAX_THREADS] */
static int default_threads(void)
{
    const char *s = getenv("NNRT_THREADS");
    long n = 0;
    if (s && *s) {
        char *end;
        n = strtol(s, &end, 10);
        if (*end || n < 1)
            n = 0;
    }
    if (n == 0)
        n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > MAX_THREADS ? MAX_THREADS : (int)n;
}

void nnrt_set_threads(int n)
{
    nnrt_join();
    pthread_mutex_lock(&pool.job_lock);
    pool.nthreads = n < 1 ? 1 : n > MAX_THREADS ? MAX_THREADS : n;
    pthread_mutex_unlock(&pool.job_lock);
}

int nnrt_threads(void)
{
    if (in_task)        /* inside a task (the lock is the job's): a nested call runs here */
        return 1;
    nnrt_join();        /* a caller that asks wants the threads: its job left running ends */
    pthread_mutex_lock(&pool.job_lock);
    if (pool.nthreads == 0)
        pool.nthreads = default_threads();
    int n = pool.nthreads;
    pthread_mutex_unlock(&pool.job_lock);
    return n;
}

/* takes tasks from the current job until none is left, a few at a time:
 * each take moves the counter's cache line between cores, which costs as
 * much as a small task */
static void run_tasks(void)
{
    int i, n = pool.job.ntasks, chunk = pool.job.chunk;
    in_task = 1;
    while ((i = atomic_fetch_add(&pool.next, chunk)) < n)
        for (int end = i + chunk < n ? i + chunk : n; i < end; i++)
            pool.job.fn(pool.job.ctx, i);
    in_task = 0;
}

static void *worker(void *arg)
{
    int w = (int)(intptr_t)arg;
    unsigned seen = 0;                  /* go[w] before its first job (it may be set already) */
    worker_id = w;
    for (;;) {
        unsigned g;
        for (int i = 0; (g = atomic_load(&pool.go[w].v)) == seen; i++) {
            if (i < SPIN_CHECKS) {
                cpu_relax();
                continue;
            }
            /* Sleep. The caller bumps go[w] before it reads sleepers, and we
             * count ourselves before we read go[w] again: one of us sees the other. */
            pthread_mutex_lock(&pool.sleep_lock);
            atomic_fetch_add(&pool.sleepers, 1);
            while ((g = atomic_load(&pool.go[w].v)) == seen)
                pthread_cond_wait(&pool.wake, &pool.sleep_lock);
            atomic_fetch_sub(&pool.sleepers, 1);
            pthread_mutex_unlock(&pool.sleep_lock);
            break;
        }
        seen = g;
        /* join, then look: the caller closes, then looks at active */
        atomic_fetch_add(&pool.active, 1);
        if (atomic_load(&pool.open) == g)
            run_tasks();
        atomic_fetch_sub(&pool.active, 1);
    }
    return NULL;
}

/* starts workers up to n threads (caller included); returns how many run */
static int start_workers(int n)
{
    while (pool.started < n) {
        pthread_t t;
        pthread_attr_t a;
        pthread_attr_init(&a);
        pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        int rc = pthread_create(&t, &a, worker, (void *)(intptr_t)pool.started);
        pthread_attr_destroy(&a);
        if (rc != 0)
            break;                      /* fewer threads: still correct */
        pool.started++;
    }
    return pool.started;
}

/* Opens a job of ntasks tasks for the workers (the caller holds job_lock),
 * threads for up to ntasks + extra of them, caller included (extra 1: the
 * caller takes none until it joins); returns 0, with the lock released,
 * when no worker can take part. */
static int publish(void (*fn)(void *ctx, int task), void *ctx, int ntasks, int extra)
{
    if (pool.nthreads == 0)
        pool.nthreads = default_threads();
    if (pool.started == 0)
        pool.started = 1;               /* the caller */
    int n = pool.nthreads < ntasks + extra ? pool.nthreads : ntasks + extra;
    if (n > 1)
        n = start_workers(n) < n ? pool.started : n;
    if (n <= 1) {
        pthread_mutex_unlock(&pool.job_lock);
        return 0;
    }
    pool.job.fn = fn;
    pool.job.ctx = ctx;
    pool.job.ntasks = ntasks;
    /* tasks taken a few at a time: fine enough that the threads end together
     * (about 16 chunks a thread), coarse enough that
     * the counter's cache line does not bounce for every small task */
    pool.job.chunk = ntasks / (16 * n) > 1 ? ntasks / (16 * n) : 1;
    atomic_store(&pool.next, 0);
    unsigned g = ++pool.gen;
    if (g == 0)
        g = pool.gen = 1;
    atomic_store(&pool.open, g);
    for (int w = 1; w < n; w++)
        atomic_store(&pool.go[w].v, g);
    if (atomic_load(&pool.sleepers) > 0) {
        pthread_mutex_lock(&pool.sleep_lock);
        pthread_cond_broadcast(&pool.wake);
        pthread_mutex_unlock(&pool.sleep_lock);
    }
    return 1;
}

/* The caller's part of the open job: the tasks left, then the wait for the
 * workers that joined; the job ends and the lock is released. */
static void finish(void)
{
    run_tasks();
    atomic_store(&pool.open, 0);
    for (int i = 0; atomic_load(&pool.active) != 0; i++) {
        cpu_relax();
        if (i > SPIN_YIELD)
            sched_yield();              /* a worker in a task may be waiting for a core */
    }
    pthread_mutex_unlock(&pool.job_lock);
}

void nnrt_parallel(void (*fn)(void *ctx, int task), void *ctx, int ntasks)
{
    if (ntasks <= 0)
        return;
    nnrt_join();
    if (ntasks == 1 || in_task || pthread_mutex_trylock(&pool.job_lock) != 0 || !publish(fn, ctx, ntasks, 0)) {
        for (int i = 0; i < ntasks; i++)
            fn(ctx, i);
        return;
    }
    finish();
}

int nnrt_spawn(void (*fn)(void *ctx, int task), void *ctx, int ntasks)
{
    if (ntasks <= 0 || spawned || in_task || pthread_mutex_trylock(&pool.job_lock) != 0)
        return 0;
    if (!publish(fn, ctx, ntasks, 1))
        return 0;
    spawned = 1;
    return 1;
}

int nnrt_can_spawn(void)
{
    return !spawned && !in_task;
}

/* the ranges a spawned job reads (nnrt_spawn_read) */
static _Thread_local struct { const char *p; size_t n; } spawn_reads[4];
static _Thread_local int nspawn_reads;

void nnrt_spawn_read(const void *p, size_t bytes)
{
    if (spawned && nspawn_reads < 4 && p && bytes)
        spawn_reads[nspawn_reads].p = p, spawn_reads[nspawn_reads++].n = bytes;
}

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#include <cpuid.h>
/* PREFETCHW: AMD's since the K6; Intel's since Broadwell (CPUID 0x80000001
 * ECX bit 8); asked once, when the program loads */
static int prefetchw;
__attribute__((constructor)) static void prefetchw_init(void)
{
    unsigned a, b, c, d;
    prefetchw = __get_cpuid(0x80000001u, &a, &b, &c, &d) && (c >> 8 & 1);
}
static int has_prefetchw(void)
{
    return prefetchw;
}
__attribute__((target("prfchw"))) static void take_back(const char *p, size_t n)
{
    for (uintptr_t a = (uintptr_t)p & ~(uintptr_t)63; a < (uintptr_t)p + n; a += 64)
        __builtin_prefetch((const void *)a, 1, 3);
}
#else
static int has_prefetchw(void)
{
    return 0;
}
static void take_back(const char *p, size_t n)
{
    (void)p, (void)n;
}
#endif

void nnrt_join(void)
{
    if (!spawned)
        return;
    spawned = 0;
    finish();
    /* the caller's next stores to these (a max-pool rewriting the deferred
     * convolution's input) then need not wait for the worker's core */
    for (int i = 0; has_prefetchw() && i < nspawn_reads; i++)
        take_back(spawn_reads[i].p, spawn_reads[i].n);
    nspawn_reads = 0;
}

/* ---- ranges ---- */

typedef struct range_job {
    void (*fn)(void *ctx, size_t lo, size_t hi);
    void *ctx;
    size_t n, step;
} range_job;

static void range_task(void *arg, int task)
{
    const range_job *j = arg;
    size_t lo = (size_t)task * j->step, hi = lo + j->step < j->n ? lo + j->step : j->n;
    j->fn(j->ctx, lo, hi);
}

void nnrt_parallel_for(void (*fn)(void *ctx, size_t lo, size_t hi), void *ctx, size_t n,
                       size_t grain)
{
    size_t parts = grain ? n / grain : n;
    int threads = parts > 1 ? nnrt_threads() : 1;
    if (threads <= 1 || n < 32) {
        if (n)
            fn(ctx, 0, n);
        return;
    }
    if (parts > (size_t)threads)
        parts = (size_t)threads;
    /* equal parts, each a multiple of 16 elements (whole vectors, own cache lines) */
    range_job j = {fn, ctx, n, ((n + parts - 1) / parts + 15) / 16 * 16};
    nnrt_parallel(range_task, &j, (int)((n + j.step - 1) / j.step));
}

/* ---- scratch ---- */

enum { SCRATCH_SLOTS = 4 };
static _Thread_local struct scratch { float *p; size_t n; } scratch[SCRATCH_SLOTS];

/* The workspace: thread t (0: the thread that gave it, w: worker w) has slot
 * s at ws.base + ws.at[t][s] for ws.cap[s] floats. */
static struct {
    float *base;
    int threads;
    size_t cap[SCRATCH_SLOTS];
    size_t at[MAX_THREADS][SCRATCH_SLOTS];
    atomic_long misses;
} ws;
static _Thread_local int ws_owner;      /* the thread that gave the workspace */

void nnrt_workspace_use(float *mem, const nnrt_workspace *w, int threads)
{
    nnrt_join();
    pthread_mutex_lock(&pool.job_lock);
    ws.base = mem;
    ws.threads = threads < 1 ? 1 : threads > MAX_THREADS ? MAX_THREADS : threads;
    ws_owner = mem != NULL;
    if (mem) {
        size_t at = 0;
        for (int s = 1; s <= 2; s++) {          /* the calling thread's */
            ws.cap[s] = nnrt_workspace_slot(w, s);
            ws.at[0][s] = at;
            at += ws.cap[s];
        }
        ws.cap[0] = nnrt_workspace_slot(w, 0), ws.cap[3] = nnrt_workspace_slot(w, 3);
        for (int t = 0; t < ws.threads; t++) {  /* every thread's */
            ws.at[t][0] = at;
            ws.at[t][3] = at + ws.cap[0];
            at += ws.cap[0] + ws.cap[3];
        }
    }
    pthread_mutex_unlock(&pool.job_lock);
}

void nnrt_workspace_release(const float *mem)
{
    nnrt_join();
    pthread_mutex_lock(&pool.job_lock);
    if (mem && ws.base == mem) {
        ws.base = NULL;
        ws_owner = 0;
    }
    pthread_mutex_unlock(&pool.job_lock);
}

long nnrt_workspace_misses(void)
{
    return atomic_load(&ws.misses);
}

/* NNRT_POISON_SCRATCH=1 (tests): every buffer handed out is first filled
 * with NaNs, so that a kernel reading scratch it did not write this call
 * shows in its results */
static int poison;

/* asked once, when the program loads (threads ask at every call) */
__attribute__((constructor)) static void poison_init(void)
{
    const char *e = getenv("NNRT_POISON_SCRATCH");
    poison = e && *e == '1';
}

static float *handed(float *p, size_t nfloats)
{
    for (size_t i = 0; poison && i < nfloats; i++)
        p[i] = __builtin_nanf("");
    return p;
}

float *nnrt_scratch(int slot, size_t nfloats)
{
    int t = worker_id ? worker_id : ws_owner ? 0 : -1;
    if (ws.base && t >= 0 && t < ws.threads && (t == 0 || slot == 0 || slot == 3)) {
        if (nfloats <= ws.cap[slot])
            return handed(ws.base + ws.at[t][slot], nfloats);
        atomic_fetch_add(&ws.misses, 1);
    }
    struct scratch *s = &scratch[slot];
    if (s->n < nfloats) {
        free(s->p);
        s->n = nfloats + nfloats / 4;   /* a little room, so near sizes reuse it */
        s->p = nnrt_alloc(s->n, "the kernels' scratch memory");
    }
    return handed(s->p, nfloats);
}
