// The one pool of worker threads of the native core.
//
// Why a pool: starting std::threads costs ~20-50 us per call, more than a whole small query.
// The pool starts its workers at first use (usable cores - 1: the calling thread always works
// too) and keeps them. A job asks for up to `helpers` workers; only idle workers join, so
// calls from many Python threads at once share the same workers instead of each starting its
// own (no oversubscription: at most pool size + callers threads ever run). A caller never
// waits for a worker to become free: it does the work itself, and helpers that join later
// find the remaining chunks.
#pragma once
#include <atomic>
#include <cstddef>
#include <functional>

namespace bitgraph {

class ThreadPool {
 public:
  // The process-wide pool (started on first use, sized to the usable cores).
  static ThreadPool& instance();

  // Runs body(worker) on the calling thread (worker 0) and on up to `helpers` idle pool
  // threads (workers 1..helpers, numbered in the order they join); returns once every
  // participant returned. `body` must share its work through its own counter: it may run
  // on fewer threads than asked. Exceptions must not leave `body`.
  void run(size_t helpers, const std::function<void(size_t worker)>& body);

  // Workers the pool keeps (callers come on top).
  size_t size() const;
  // Resizes the pool (0: the default, usable cores - 1). Waits for running jobs' workers.
  void resize(size_t workers);

  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

 private:
  ThreadPool();
  ~ThreadPool();
  struct State;
  State* state() const { return state_.load(std::memory_order_acquire); }
  std::atomic<State*> state_;  // replaced once in a fork()ed child (thread_pool.cpp)
};

// Cores this process may run on (its CPU affinity), at least 1.
size_t usable_cores();

}  // namespace bitgraph
