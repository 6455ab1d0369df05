#include "core/thread_pool.hpp"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

namespace bitgraph {

size_t usable_cores() {
#ifdef __linux__
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return size_t(n);
  }
#endif
  const unsigned n = std::thread::hardware_concurrency();
  return n ? size_t(n) : 1;
}

namespace {

struct Job {
  const std::function<void(size_t)>* body;
  size_t wanted;      // helpers asked for
  size_t joined = 0;  // helpers that took part (worker numbers 1..joined)
  size_t running = 0;
  bool closed = false;  // the caller finished: no more helpers join
};

}  // namespace

struct ThreadPool::State {
  pid_t owner = getpid();  // a forked child has none of the parent's workers
  std::mutex mu;
  std::condition_variable work_cv;  // workers wait for jobs
  std::condition_variable done_cv;  // callers wait for their helpers
  std::deque<Job*> open;            // jobs that still take helpers
  std::vector<std::thread> workers;
  size_t target = 0;
  bool stopping = false;

  void worker_loop(size_t index) {
    std::unique_lock<std::mutex> lock(mu);
    for (;;) {
      work_cv.wait(lock, [&] { return stopping || index >= target || !open.empty(); });
      if (stopping || index >= target) return;
      Job* job = open.front();
      const size_t worker = ++job->joined;
      ++job->running;
      if (job->joined >= job->wanted) open.pop_front();
      lock.unlock();
      (*job->body)(worker);
      lock.lock();
      if (--job->running == 0 && job->closed) done_cv.notify_all();
    }
  }

  void start(size_t n) {  // called with mu held
    target = n;
    while (workers.size() < n) {
      const size_t index = workers.size();
      workers.emplace_back([this, index] { worker_loop(index); });
    }
  }
};

ThreadPool::ThreadPool() : state_(new State) {
  std::lock_guard<std::mutex> g(state()->mu);
  state()->start(usable_cores() - 1);
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> g(state()->mu);
    state()->stopping = true;
  }
  state()->work_cv.notify_all();
  for (auto& t : state()->workers) t.join();
  delete state();
}

ThreadPool& ThreadPool::instance() {
  // Never destroyed: workers must not be joined during static destruction at interpreter
  // exit, when another thread may still be inside a job.
  static ThreadPool* pool = new ThreadPool();
  return *pool;
}

size_t ThreadPool::size() const {
  std::lock_guard<std::mutex> g(state()->mu);
  return state()->target;
}

void ThreadPool::resize(size_t workers) {
  if (workers == 0) workers = usable_cores() - 1;
  State& s = *state();
  std::vector<std::thread> retired;
  {
    std::lock_guard<std::mutex> g(s.mu);
    if (workers >= s.workers.size()) {
      s.start(workers);
      return;
    }
    s.target = workers;
    for (size_t i = workers; i < s.workers.size(); ++i)
      retired.push_back(std::move(s.workers[i]));
    s.workers.resize(workers);
  }
  s.work_cv.notify_all();
  for (auto& t : retired) t.join();  // each finishes its current job first
}

void ThreadPool::run(size_t helpers, const std::function<void(size_t)>& body) {
  if (helpers > 0 && state()->owner != getpid()) {
    // A fork()ed child (multiprocessing's default on Linux): the workers did not come along
    // and a mutex may have been copied locked, so the child starts a pool of its own (the
    // parent's state is left behind, never touched again). fork_mu is only ever taken in a
    // child, so no fork copies it locked.
    static std::mutex fork_mu;
    std::lock_guard<std::mutex> once(fork_mu);
    if (state()->owner != getpid()) {
      State* fresh = new State;
      {
        std::lock_guard<std::mutex> g(fresh->mu);
        fresh->start(usable_cores() - 1);
      }
      state_.store(fresh, std::memory_order_release);
    }
  }
  State& s = *state();
  Job job{&body, helpers};
  bool queued = false;
  if (helpers > 0) {
    std::lock_guard<std::mutex> g(s.mu);
    if (s.target > 0) {
      s.open.push_back(&job);
      queued = true;
    }
  }
  if (queued) {
    if (helpers == 1) s.work_cv.notify_one();
    else s.work_cv.notify_all();
  }
  body(0);
  if (!queued) return;
  std::unique_lock<std::mutex> lock(s.mu);
  job.closed = true;
  auto it = std::find(s.open.begin(), s.open.end(), &job);
  if (it != s.open.end()) s.open.erase(it);
  s.done_cv.wait(lock, [&] { return job.running == 0; });
}

}  // namespace bitgraph
