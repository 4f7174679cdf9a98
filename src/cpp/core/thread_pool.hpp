// thread_pool.hpp — the one thread runtime of every C++ kernel: fastdl's thread count and parallel_for.
//
// A kernel splits its work into tasks whose boundaries depend only on the shapes and the thread count it
// was asked to use, so which thread runs which task never changes a result. parallel_for hands the tasks
// out at run time: each participant (the calling thread is participant 0, pool workers are 1, 2, ...)
// first claims the tasks of its own contiguous block (so with every thread present, the split is the
// static one and each thread keeps its data in its own cache), then takes what is left in the others'
// blocks. A worker that the OS has parked behind another library's threads therefore never holds a call
// up: the caller finishes its tasks. An idle worker spins for the next call (at most 500 us) only while no
// other thread of the process wants a core, and otherwise sleeps at once, so that a NumPy or PyTorch call
// between two fastdl calls gets the cores.
//
// A call made while the pool is busy (another Python thread, or a task of an outer parallel_for) runs its
// tasks on the calling thread, in the same split. After fork() the child starts a pool of its own.
#pragma once

#include <cstdint>

namespace fastdl {

using index_t = std::int64_t;

// Threads the kernels may use (>= 1): set_num_threads(n), else OMP_NUM_THREADS, else the CPUs this
// process may run on.
int get_num_threads();
// Sets the thread count (1 <= n <= kMaxThreads; checked by the caller's bindings).
void set_num_threads(int n);
constexpr int kMaxThreads = 256;

// Inside a task: the participant running it, in [0, threads) of the innermost parallel_for (0 outside).
int worker_index();

namespace pool_detail {
using TaskFn = void (*)(void* context, index_t task);
// Runs fn(context, i) for every i in [0, tasks) on at most `threads` threads (see above).
void run(index_t tasks, int threads, TaskFn fn, void* context);
}  // namespace pool_detail

// task(i) for every i in [0, tasks), on at most `threads` threads; returns when all are done. An exception
// thrown by a task is rethrown here (the first one) after the others finished.
template <class Task>
void parallel_for(index_t tasks, int threads, Task&& task) {
    pool_detail::run(
        tasks, threads, [](void* context, index_t i) { (*static_cast<Task*>(context))(i); },
        const_cast<void*>(static_cast<const void*>(&task)));
}

// Test and tuning hooks (see bindings): worker 1 sleeps this many microseconds each time it wakes for a
// call, before it claims a task; and the longest an idle worker spins before it sleeps.
void set_worker_delay_us(int us);
void set_spin_us(int us);
int get_spin_us();

}  // namespace fastdl
