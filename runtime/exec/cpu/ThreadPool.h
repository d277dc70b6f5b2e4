//===- ThreadPool.h - A small fork-join pool for the CPU backend -*- C++ -*-===//
//
// The CPU backend parallelises every op the same way: split the work into independent tasks
// (row blocks of a GEMM, (batch, head, column block) triples of the mLSTM cell, ranges of rows
// of a row-wise op) and run them on a fixed set of threads, the calling thread included, then
// continue when all are done. That is all this pool does: parallelFor(count, task) runs task(i)
// for every i in [0, count) exactly once and returns when every task has finished. Tasks are
// handed out dynamically (an atomic counter), so uneven tasks balance themselves.
//
// One parallelFor runs at a time per pool (the backend is not re-entrant); a nested call from
// inside a task runs serially on the calling thread instead of deadlocking. If a task throws,
// the remaining unstarted tasks are skipped and the first exception is rethrown to the caller.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_EXEC_CPU_THREADPOOL_H
#define XLC_RUNTIME_EXEC_CPU_THREADPOOL_H

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace xlc::exec {

class ThreadPool {
public:
  /// A pool of |threads| threads in total (the caller of parallelFor counts as one, so
  /// threads − 1 workers are started); 0 means std::thread::hardware_concurrency().
  explicit ThreadPool(unsigned threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool &) = delete;
  ThreadPool &operator=(const ThreadPool &) = delete;

  /// Threads that run tasks, the caller included (≥ 1).
  unsigned size() const { return static_cast<unsigned>(workers_.size()) + 1; }

  /// Runs task(i) for every i in [0, count) and waits for all of them.
  void parallelFor(std::size_t count, const std::function<void(std::size_t)> &task);

  /// Splits [0, total) into at most |maxChunks| contiguous ranges of at least |minChunk| items
  /// (the last may be shorter) and runs body(begin, end) for each in parallel.
  void parallelRange(std::size_t total, std::size_t minChunk,
                     const std::function<void(std::size_t, std::size_t)> &body);

private:
  void workerLoop();
  /// Takes tasks of the current job until none is left.
  void drain();

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_; ///< workers wait here for a new job (or shutdown)
  std::condition_variable done_; ///< the caller waits here for the workers to finish a job
  std::uint64_t generation_ = 0; ///< incremented per job; workers run each generation once
  bool stopping_ = false;
  unsigned pending_ = 0; ///< workers that have not yet finished the current job

  // The current job (valid while a parallelFor is in progress).
  const std::function<void(std::size_t)> *task_ = nullptr;
  std::size_t count_ = 0;
  std::atomic<std::size_t> next_{0};
  std::atomic<bool> failed_{false};
  std::exception_ptr error_;
  std::atomic<bool> busy_{false}; ///< a parallelFor is running (nested calls run serially)
};

} // namespace xlc::exec

#endif // XLC_RUNTIME_EXEC_CPU_THREADPOOL_H
