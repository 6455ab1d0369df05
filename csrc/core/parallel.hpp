// parallel_for over [0, n) on up to `threads` threads: the calling thread and idle workers
// of the core's one pool (core/thread_pool.hpp; no thread is started per call). The calling
// thread alone invokes `progress` now and then; when it returns false the loop stops early
// (items already started finish) and Cancelled is thrown. The first exception from any
// worker is rethrown in the caller after all workers returned.
#pragma once
#include <atomic>
#include <chrono>
#include <cstddef>
#include <exception>
#include <functional>
#include <mutex>

#include "core/thread_pool.hpp"
#include "core/types.hpp"

namespace bitgraph {

using ProgressFn = std::function<bool(size_t done)>;

template <class Fn>
void parallel_for(size_t n, size_t threads, size_t chunk, Fn&& fn,
                  const ProgressFn& progress = nullptr) {
  if (threads < 1) threads = 1;
  if (chunk < 1) chunk = 1;
  size_t max_useful = (n + chunk - 1) / chunk;
  if (threads > max_useful) threads = max_useful ? max_useful : 1;
  std::atomic<size_t> next{0};
  std::atomic<size_t> done{0};
  std::atomic<bool> stop{false};
  std::exception_ptr error;
  std::mutex error_mu;

  auto worker = [&](size_t tid, bool reports) {
    auto last = std::chrono::steady_clock::now();
    try {
      while (!stop.load(std::memory_order_relaxed)) {
        size_t begin = next.fetch_add(chunk);
        if (begin >= n) break;
        size_t end = begin + chunk < n ? begin + chunk : n;
        for (size_t i = begin; i < end; ++i) fn(i, tid);
        done.fetch_add(end - begin, std::memory_order_relaxed);
        if (reports) {
          auto now = std::chrono::steady_clock::now();
          if (now - last > std::chrono::milliseconds(100)) {
            last = now;
            if (!progress(done.load())) stop = true;
          }
        }
      }
    } catch (...) {
      std::lock_guard<std::mutex> g(error_mu);
      if (!error) error = std::current_exception();
      stop = true;
    }
  };

  if (threads == 1) {
    worker(0, bool(progress));  // one thread: no pool, no synchronisation
  } else {
    const std::function<void(size_t)> body = [&](size_t tid) { worker(tid, tid == 0 && progress); };
    ThreadPool::instance().run(threads - 1, body);
  }
  if (error) std::rethrow_exception(error);
  if (progress) {
    bool keep_going = progress(done.load());
    if (stop || !keep_going) {
      if (done.load() < n) throw Cancelled();
    }
  }
}

}  // namespace bitgraph
