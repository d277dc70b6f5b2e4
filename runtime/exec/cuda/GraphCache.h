//===- GraphCache.h - Decode steps captured as CUDA graphs -------*- C++ -*-===//
//
// A decode step is dozens of small launches whose launch overhead is a large share of its time
// at batch 1; capturing the step once per call shape (function, first slot, batch) and replaying
// the graph removes it. The generator's batch shrinks as sequences finish, so a long run meets
// many shapes: beyond kMaxGraphs the cache starts over (a capture costs about one eager step).
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_EXEC_CUDA_GRAPHCACHE_H
#define XLC_RUNTIME_EXEC_CUDA_GRAPHCACHE_H

#include "runtime/cuda/DriverApi.h"

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <tuple>

namespace xlc::exec {

class GraphCache {
public:
  static constexpr std::size_t kMaxGraphs = 64;

  /// Replays the graph of (function, firstSlot, batch) on |stream|, capturing |enqueue| into it
  /// first when there is none. An exception from |enqueue| ends the capture and propagates.
  void launch(const std::string &function, std::uint64_t firstSlot, std::uint64_t batch,
              CUstream stream, const std::function<void()> &enqueue);

  std::size_t size() const { return graphs_.size(); }

private:
  /// A captured and instantiated graph; destroys both handles on every path.
  struct Graph {
    CUgraph graph = nullptr;
    CUgraphExec exec = nullptr;
    Graph() = default;
    Graph(Graph &&o) noexcept;
    Graph &operator=(Graph &&) = delete;
    ~Graph();
  };
  std::map<std::tuple<std::string, std::uint64_t, std::uint64_t>, Graph> graphs_;
};

} // namespace xlc::exec

#endif // XLC_RUNTIME_EXEC_CUDA_GRAPHCACHE_H
