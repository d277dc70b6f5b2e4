//===- GraphCache.cpp - Decode steps captured as CUDA graphs --------------===//

#include "runtime/exec/cuda/GraphCache.h"

#include "runtime/cuda/Device.h"

#include <utility>

namespace xlc::exec {

GraphCache::Graph::Graph(Graph &&o) noexcept
    : graph(std::exchange(o.graph, nullptr)), exec(std::exchange(o.exec, nullptr)) {}

GraphCache::Graph::~Graph() {
  if (exec)
    cuda::driver().cuGraphExecDestroy(exec);
  if (graph)
    cuda::driver().cuGraphDestroy(graph);
}

void GraphCache::launch(const std::string &function, std::uint64_t firstSlot,
                        std::uint64_t batch, CUstream stream,
                        const std::function<void()> &enqueue) {
  const cuda::DriverApi &api = cuda::driver();
  auto key = std::make_tuple(function, firstSlot, batch);
  auto it = graphs_.find(key);
  if (it == graphs_.end()) {
    if (graphs_.size() >= kMaxGraphs)
      graphs_.clear();
    Graph g;
    XLC_CU_CHECK(api.cuStreamBeginCapture_v2(stream, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL));
    try {
      enqueue();
    } catch (...) {
      api.cuStreamEndCapture(stream, &g.graph);
      throw;
    }
    XLC_CU_CHECK(api.cuStreamEndCapture(stream, &g.graph));
    XLC_CU_CHECK(api.cuGraphInstantiateWithFlags(&g.exec, g.graph, 0));
    it = graphs_.emplace(key, std::move(g)).first;
  }
  XLC_CU_CHECK(api.cuGraphLaunch(it->second.exec, stream));
}

} // namespace xlc::exec
