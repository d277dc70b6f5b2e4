//===- ThreadPool.cpp - A small fork-join pool for the CPU backend --------===//
//
// Protocol: parallelFor publishes the job (task, count, next = 0, pending = number of workers)
// under the mutex, bumps the generation and wakes the workers. Every worker takes part in every
// generation: it wakes, takes tasks from the shared counter until it runs past count, and then
// decrements pending. The caller takes tasks too and returns only when pending is 0, i.e. when
// every worker has finished with this job. So no worker can still read the job's fields (or the
// task, whose reference dies on return) when the next job is published, and no worker can miss
// a generation.
//
//===----------------------------------------------------------------------===//

#include "runtime/exec/cpu/ThreadPool.h"

#include <algorithm>

namespace xlc::exec {

ThreadPool::ThreadPool(unsigned threads) {
  if (threads == 0)
    threads = std::max(1u, std::thread::hardware_concurrency());
  workers_.reserve(threads - 1);
  for (unsigned i = 1; i < threads; ++i)
    workers_.emplace_back([this] { workerLoop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (std::thread &t : workers_)
    t.join();
}

void ThreadPool::drain() {
  for (;;) {
    if (failed_.load(std::memory_order_relaxed))
      return;
    std::size_t i = next_.fetch_add(1, std::memory_order_relaxed);
    if (i >= count_)
      return;
    try {
      (*task_)(i);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!error_)
        error_ = std::current_exception();
      failed_.store(true, std::memory_order_relaxed);
    }
  }
}

void ThreadPool::workerLoop() {
  std::uint64_t seen = 0;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || generation_ != seen; });
      if (stopping_)
        return;
      seen = generation_;
    }
    drain();
    bool last;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      last = --pending_ == 0;
    }
    if (last)
      done_.notify_one();
  }
}

void ThreadPool::parallelFor(std::size_t count, const std::function<void(std::size_t)> &task) {
  if (count == 0)
    return;
  // Serial when there is nothing to share, or when called from inside a task of this pool.
  bool expected = false;
  if (workers_.empty() || count == 1 || !busy_.compare_exchange_strong(expected, true)) {
    for (std::size_t i = 0; i < count; ++i)
      task(i);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    task_ = &task;
    count_ = count;
    next_.store(0, std::memory_order_relaxed);
    failed_.store(false, std::memory_order_relaxed);
    error_ = nullptr;
    pending_ = static_cast<unsigned>(workers_.size());
    ++generation_;
  }
  wake_.notify_all();
  drain();
  std::exception_ptr error;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [&] { return pending_ == 0; });
    error = error_;
    task_ = nullptr;
    count_ = 0;
  }
  busy_.store(false);
  if (error)
    std::rethrow_exception(error);
}

void ThreadPool::parallelRange(std::size_t total, std::size_t minChunk,
                               const std::function<void(std::size_t, std::size_t)> &body) {
  if (total == 0)
    return;
  minChunk = std::max<std::size_t>(minChunk, 1);
  // A few chunks per thread so that dynamic scheduling can even out uneven chunks.
  std::size_t chunks = std::min<std::size_t>(4 * size(), (total + minChunk - 1) / minChunk);
  chunks = std::max<std::size_t>(chunks, 1);
  const std::size_t per = (total + chunks - 1) / chunks;
  chunks = (total + per - 1) / per;
  parallelFor(chunks, [&](std::size_t c) {
    std::size_t begin = c * per;
    body(begin, std::min(total, begin + per));
  });
}

} // namespace xlc::exec
