// thread_pool.cpp — fastdl's thread runtime (see thread_pool.hpp for what it promises).
//
// One job runs at a time. Its tasks are grouped into at most 65535 units, and the units into one
// contiguous block per participant. A block is one 64-bit word, generation (32 bits) | next (16) | end (16):
// its owner claims units from the front (next + 1), others from the back (end - 1), both by compare-and-swap,
// so a claim is valid only while the word still carries the job's generation and the job still has that
// unit. A worker that wakes late, after the job is over, finds no unit to claim and touches nothing else of
// it; the caller waits only for units that were claimed, never for a worker that did not show up.
#include "core/thread_pool.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>
#include <new>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif
#include <pthread.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace fastdl {

namespace {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
    _mm_pause();
#elif defined(__aarch64__)
    asm volatile("yield" ::: "memory");
#endif
}

// ---------------------------------------------------------------------------------------------
// The thread count
// ---------------------------------------------------------------------------------------------
int cpus_available() {
#if defined(__linux__)
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
#endif
    return std::max(1u, std::thread::hardware_concurrency());
}

// OMP_NUM_THREADS's first entry ("4" or "4,2"), or 0 when it is unset or not a positive integer.
int omp_num_threads_env() {
    const char* text = std::getenv("OMP_NUM_THREADS");
    if (!text) return 0;
    char* end = nullptr;
    const long n = std::strtol(text, &end, 10);
    if (end == text || (*end != '\0' && *end != ',') || n < 1) return 0;
    return static_cast<int>(std::min<long>(n, kMaxThreads));
}

// ---------------------------------------------------------------------------------------------
// The other threads of the process
// ---------------------------------------------------------------------------------------------
// Watches the other threads of this process (another library's pool, such as OpenBLAS's, or Python
// threads): busy() says whether one of them is running or waiting for a core, from the state letter of
// /proc/self/task/TID/stat. The list of threads is read again every 20 ms; `ours` are left out (the pool's
// workers and the thread that called it last). A process of more than kMaxWatched other threads counts as
// busy (watching them would cost more than it saves). Linux only; elsewhere busy() is always false.
class OtherThreads {
public:
    ~OtherThreads() {
        for (int fd : fds_) close(fd);
    }
    bool busy(const std::vector<long>& ours) {
#if defined(__linux__)
        const auto now = std::chrono::steady_clock::now();
        if (now - listed_ > std::chrono::milliseconds(20)) relist(ours, now);
        if (too_many_) return true;
        char text[96];
        for (int fd : fds_) {
            const ssize_t n = pread(fd, text, sizeof(text) - 1, 0);
            if (n <= 0) continue;
            text[n] = '\0';
            const char* close_paren = std::strrchr(text, ')');  // "tid (name) S ...": the name may hold spaces
            if (close_paren && close_paren[1] == ' ' && close_paren[2] == 'R') return true;
        }
#else
        (void)ours;
#endif
        return false;
    }

private:
    void relist(const std::vector<long>& ours, std::chrono::steady_clock::time_point now) {
#if defined(__linux__)
        listed_ = now;
        too_many_ = false;
        for (int fd : fds_) close(fd);
        fds_.clear();
        DIR* dir = opendir("/proc/self/task");
        if (!dir) return;
        while (const dirent* entry = readdir(dir)) {
            const long tid = std::atol(entry->d_name);
            if (tid <= 0 || std::find(ours.begin(), ours.end(), tid) != ours.end()) continue;
            if (fds_.size() == kMaxWatched) {
                too_many_ = true;
                break;
            }
            const std::string path = std::string("/proc/self/task/") + entry->d_name + "/stat";
            const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
            if (fd >= 0) fds_.push_back(fd);
        }
        closedir(dir);
#else
        (void)ours;
        (void)now;
#endif
    }

    static constexpr size_t kMaxWatched = 16;
    std::vector<int> fds_;  // of /proc/self/task/TID/stat, one per watched thread
    bool too_many_ = false;
    std::chrono::steady_clock::time_point listed_{};
};

// The calling thread's kernel id (asked of the kernel once per thread).
long this_thread_tid() {
#if defined(__linux__)
    thread_local const long tid = static_cast<long>(syscall(SYS_gettid));
    return tid;
#else
    return 0;
#endif
}

std::atomic<int> g_threads{0};  // 0: not decided yet
std::atomic<int> g_worker_delay_us{0};
std::atomic<int> g_spin_us{500};

thread_local int t_worker_index = 0;
thread_local bool t_in_task = false;

// Sets the calling thread's worker index and in-task flag for one scope.
class TaskScope {
public:
    TaskScope(int index, bool in_task) : index_(t_worker_index), in_task_(t_in_task) {
        t_worker_index = index;
        t_in_task = in_task;
    }
    ~TaskScope() {
        t_worker_index = index_;
        t_in_task = in_task_;
    }
    TaskScope(const TaskScope&) = delete;
    TaskScope& operator=(const TaskScope&) = delete;

private:
    int index_;
    bool in_task_;
};

void run_inline(index_t tasks, pool_detail::TaskFn fn, void* context) {
    const TaskScope scope(0, t_in_task);
    for (index_t i = 0; i < tasks; ++i) fn(context, i);
}

// ---------------------------------------------------------------------------------------------
// The pool
// ---------------------------------------------------------------------------------------------
constexpr std::uint64_t kMaxUnits = 0xFFFF;

struct alignas(64) Block {
    std::atomic<std::uint64_t> word{0};  // generation | next | end
};

inline std::uint64_t pack_block(std::uint32_t gen, std::uint64_t next, std::uint64_t end) {
    return (std::uint64_t(gen) << 32) | (next << 16) | end;
}
inline std::uint32_t block_gen(std::uint64_t w) { return static_cast<std::uint32_t>(w >> 32); }
inline std::uint64_t block_next(std::uint64_t w) { return (w >> 16) & 0xFFFF; }
inline std::uint64_t block_end(std::uint64_t w) { return w & 0xFFFF; }

class Pool {
public:
    // Takes the pool for one job; false while another thread's job runs.
    bool try_acquire() { return !busy_.exchange(true, std::memory_order_acquire); }
    void release() { busy_.store(false, std::memory_order_release); }

    // Runs the job on the caller (participant 0) and up to threads - 1 workers. The caller holds the pool.
    void run(index_t tasks, int threads, pool_detail::TaskFn fn, void* context) {
        tids_[0].store(this_thread_tid(), std::memory_order_relaxed);
        const std::uint32_t gen = generation_.load(std::memory_order_relaxed) + 1;
        const int parts = std::min(threads, 1 + start_workers(threads - 1, gen - 1));
        const index_t per_unit = (tasks + index_t(kMaxUnits) - 1) / index_t(kMaxUnits);
        const index_t units = (tasks + per_unit - 1) / per_unit;
        fn_.store(fn, std::memory_order_relaxed);
        context_.store(context, std::memory_order_relaxed);
        tasks_.store(tasks, std::memory_order_relaxed);
        per_unit_.store(per_unit, std::memory_order_relaxed);
        parts_.store(parts, std::memory_order_relaxed);
        done_.store(0, std::memory_order_relaxed);
        error_ = nullptr;
        failed_.store(false, std::memory_order_relaxed);
        for (int q = 0; q < parts; ++q) {
            const std::uint64_t begin = std::uint64_t(units) * q / parts, end = std::uint64_t(units) * (q + 1) / parts;
            blocks_[q].word.store(pack_block(gen, begin, end), std::memory_order_release);
        }
        generation_.store(gen, std::memory_order_seq_cst);
        if (sleepers_.load(std::memory_order_seq_cst) > 0) {
            const std::lock_guard<std::mutex> lock(sleep_mutex_);
            wake_.notify_all();
        }
        claim_and_run(0, parts, gen);
        wait_until_done(units);
        if (failed_.load(std::memory_order_acquire)) std::rethrow_exception(error_);
    }

private:
    // Starts workers until `count` exist (as far as the system allows); returns how many there are. New
    // workers have seen generation `seen`, so they join the job about to be published.
    int start_workers(int count, std::uint32_t seen) {
        while (workers_ < count) {
            try {
                std::thread(&Pool::worker_main, this, workers_ + 1, seen).detach();
            } catch (const std::system_error&) {
                break;
            }
            ++workers_;
            workers_started_.store(workers_, std::memory_order_relaxed);
        }
        return std::min(workers_, count);
    }

    // After a job a worker spins for the next one (up to g_spin_us) while nothing else in the process wants
    // a core: it goes to sleep at once when another thread of the process is running or waiting for a core
    // (another library's pool, such as OpenBLAS's, or a Python thread: OtherThreads), or when the OS took
    // its core away (two looks at the clock, about a microsecond apart while it runs, are far apart). So
    // the cores go to that other work between fastdl calls, while single-threaded work between calls
    // (NumPy element-wise code, Python) leaves it spinning and the next call finds it awake: waking a
    // sleeping thread costs tens of microseconds, a good part of a small kernel.
    void worker_main(int id, std::uint32_t seen) {
        tids_[id].store(this_thread_tid(), std::memory_order_relaxed);
        OtherThreads others;
        std::vector<long> ours;
        for (;;) {
            seen = wait_for_job(seen, others, ours);
            const int delay = g_worker_delay_us.load(std::memory_order_relaxed);
            if (delay > 0 && id == 1) std::this_thread::sleep_for(std::chrono::microseconds(delay));
            const int parts = parts_.load(std::memory_order_relaxed);
            if (id < parts) claim_and_run(id, parts, seen);
        }
    }

    // Spins as above, then sleeps until a job newer than `seen` is published; returns its generation.
    std::uint32_t wait_for_job(std::uint32_t seen, OtherThreads& others, std::vector<long>& ours) {
        using clock = std::chrono::steady_clock;
        constexpr auto kOffCore = std::chrono::microseconds(20);
        ours.clear();
        for (int k = 0; k <= workers_started_.load(std::memory_order_relaxed); ++k)
            ours.push_back(tids_[k].load(std::memory_order_relaxed));
        auto last = clock::now();
        const auto deadline = last + std::chrono::microseconds(g_spin_us.load(std::memory_order_relaxed));
        for (int i = 1;; ++i) {
            const std::uint32_t gen = generation_.load(std::memory_order_acquire);
            if (gen != seen) return gen;
            cpu_relax();
            if (i % 32 != 0) continue;
            const auto now = clock::now();
            if (now >= deadline || now - last > kOffCore || (i % 128 == 0 && others.busy(ours))) break;
            last = now;
        }
        std::unique_lock<std::mutex> lock(sleep_mutex_);
        sleepers_.fetch_add(1, std::memory_order_seq_cst);
        std::uint32_t gen;
        while ((gen = generation_.load(std::memory_order_seq_cst)) == seen) wake_.wait(lock);
        sleepers_.fetch_sub(1, std::memory_order_relaxed);
        return gen;
    }

    // Claims units of job `gen`, own block first (from the front), then the others' (from the back).
    void claim_and_run(int me, int parts, std::uint32_t gen) {
        for (int k = 0; k < parts; ++k) {
            const bool own = k == 0;
            std::atomic<std::uint64_t>& word = blocks_[(me + k) % parts].word;
            std::uint64_t w = word.load(std::memory_order_relaxed);
            while (block_gen(w) == gen && block_next(w) < block_end(w)) {
                const std::uint64_t next = block_next(w), end = block_end(w);
                const std::uint64_t claimed = own ? pack_block(gen, next + 1, end) : pack_block(gen, next, end - 1);
                if (word.compare_exchange_weak(w, claimed, std::memory_order_acquire, std::memory_order_relaxed))
                    run_unit(me, static_cast<index_t>(own ? next : end - 1));
                w = word.load(std::memory_order_relaxed);
            }
        }
    }

    void run_unit(int me, index_t unit) {
        const pool_detail::TaskFn fn = fn_.load(std::memory_order_relaxed);
        void* context = context_.load(std::memory_order_relaxed);
        const index_t per_unit = per_unit_.load(std::memory_order_relaxed);
        const index_t first = unit * per_unit, last = std::min(tasks_.load(std::memory_order_relaxed), first + per_unit);
        {
            const TaskScope scope(me, true);
            try {
                for (index_t i = first; i < last; ++i) fn(context, i);
            } catch (...) {
                const std::lock_guard<std::mutex> lock(error_mutex_);
                if (!failed_.load(std::memory_order_relaxed)) {
                    error_ = std::current_exception();
                    failed_.store(true, std::memory_order_release);
                }
            }
        }
        done_.fetch_add(1, std::memory_order_release);
    }

    // The caller's wait for units that workers claimed: spin briefly, then yield the core (a claimed unit
    // may belong to a worker that the OS parked on this very core).
    void wait_until_done(index_t units) {
        for (int i = 0; done_.load(std::memory_order_acquire) < units; ++i) {
            if (i < 256) cpu_relax();
            else std::this_thread::yield();
        }
    }

    std::atomic<bool> busy_{false};
    int workers_ = 0;  // changed only by the thread that holds the pool
    std::atomic<std::uint32_t> generation_{0};
    std::atomic<pool_detail::TaskFn> fn_{nullptr};
    std::atomic<void*> context_{nullptr};
    std::atomic<index_t> tasks_{0}, per_unit_{1}, done_{0};
    std::atomic<int> parts_{0};
    Block blocks_[kMaxThreads];
    std::atomic<long> tids_[kMaxThreads] = {};  // [0]: the last caller; [k]: worker k
    std::atomic<int> workers_started_{0};
    std::mutex error_mutex_;
    std::exception_ptr error_;
    std::atomic<bool> failed_{false};
    std::mutex sleep_mutex_;
    std::condition_variable wake_;
    std::atomic<int> sleepers_{0};
};

// The process's pool, made on first use. After fork() the child drops the parent's (whose workers did not
// come along, and whose locks may be held by threads that did not either) and makes its own; the old
// object is left alone, never freed.
std::atomic<Pool*> g_pool{nullptr};
std::mutex g_pool_mutex;

void forget_pool_in_child() {
    g_pool.store(nullptr, std::memory_order_relaxed);
    new (&g_pool_mutex) std::mutex();
}

Pool& the_pool() {
    Pool* pool = g_pool.load(std::memory_order_acquire);
    if (pool) return *pool;
    const std::lock_guard<std::mutex> lock(g_pool_mutex);
    pool = g_pool.load(std::memory_order_relaxed);
    if (!pool) {
        static const bool registered = pthread_atfork(nullptr, nullptr, &forget_pool_in_child) == 0;
        (void)registered;
        pool = new Pool();
        g_pool.store(pool, std::memory_order_release);
    }
    return *pool;
}

}  // namespace

int get_num_threads() {
    int n = g_threads.load(std::memory_order_relaxed);
    if (n > 0) return n;
    n = omp_num_threads_env();
    if (n == 0) n = std::min(cpus_available(), kMaxThreads);
    int expected = 0;
    g_threads.compare_exchange_strong(expected, n);
    return g_threads.load(std::memory_order_relaxed);
}

void set_num_threads(int n) {
    if (n < 1 || n > kMaxThreads)
        throw std::invalid_argument("set_num_threads: n must be in [1, " + std::to_string(kMaxThreads) + "], got " +
                                    std::to_string(n));
    g_threads.store(n, std::memory_order_relaxed);
}

int worker_index() { return t_worker_index; }

void set_worker_delay_us(int us) { g_worker_delay_us.store(std::max(0, us), std::memory_order_relaxed); }
void set_spin_us(int us) { g_spin_us.store(std::max(0, us), std::memory_order_relaxed); }

int get_spin_us() { return g_spin_us.load(std::memory_order_relaxed); }

namespace pool_detail {

void run(index_t tasks, int threads, TaskFn fn, void* context) {
    if (tasks <= 0) return;
    threads = static_cast<int>(std::min<index_t>({index_t(threads), index_t(kMaxThreads), tasks}));
    if (threads <= 1 || t_in_task) {
        run_inline(tasks, fn, context);
        return;
    }
    Pool& pool = the_pool();
    if (!pool.try_acquire()) {  // another thread's job is running: this one runs here, in the same split
        run_inline(tasks, fn, context);
        return;
    }
    struct Release {
        Pool& pool;
        ~Release() { pool.release(); }
    } release{pool};
    pool.run(tasks, threads, fn, context);
}

}  // namespace pool_detail

}  // namespace fastdl
