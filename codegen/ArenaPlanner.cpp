//===- ArenaPlanner.cpp - Liveness-based arena planning -------------------===//

#include "codegen/ArenaPlanner.h"

#include <algorithm>
#include <numeric>

namespace xlc::codegen {

using artifact::Expr;

static std::uint64_t roundUp(std::uint64_t v, std::uint64_t m) { return (v + m - 1) / m * m; }

Expr alignedUpperBound(const Expr &e, std::uint64_t align) {
  // ceil((c + bB + sS + xBS)/d) ≤ ceil(c/d) + ceil(b/d)B + ceil(s/d)S + ceil(x/d)BS for B, S ≥ 1
  // (each term rounds up separately, and the constant absorbs nothing it needs).
  auto up = [&](std::uint64_t v) { return roundUp((v + e.div - 1) / e.div, align); };
  return Expr{up(e.c), up(e.b), up(e.s), up(e.bs), 1};
}

/// a ≤ b for every B, S ≥ 0 (divisor-free expressions): coefficient by coefficient.
static bool allLessEqual(const Expr &a, const Expr &b) {
  return a.c <= b.c && a.b <= b.b && a.s <= b.s && a.bs <= b.bs;
}

/// The order in which candidate offsets are tried: their value at a typical prefill shape.
static std::uint64_t typical(const Expr &e) { return e.c + e.b + e.s * 2048 + e.bs * 2048; }

static Expr coefficientMax(const Expr &a, const Expr &b) {
  return Expr{std::max(a.c, b.c), std::max(a.b, b.b), std::max(a.s, b.s), std::max(a.bs, b.bs), 1};
}

/// a ≤ b for every B, S ≥ 1 (divisor-free expressions): b − a = Δc + Δb·B + Δs·S + Δbs·B·S is
/// non-decreasing in B (Δb + Δbs·S ≥ 0 for all S ≥ 1) and in S, and non-negative at (1, 1).
static bool lessEqualEverywhere(const Expr &a, const Expr &b) {
  using Wide = __int128;
  const Wide dc = Wide(b.c) - Wide(a.c), db = Wide(b.b) - Wide(a.b), ds = Wide(b.s) - Wide(a.s),
             dbs = Wide(b.bs) - Wide(a.bs);
  return dbs >= 0 && db + dbs >= 0 && ds + dbs >= 0 && dc + db + ds + dbs >= 0;
}

/// An expression ≥ both for every B, S ≥ 1: the larger one when one always is (say, the end of a
/// function planned by the batch alone, such as the decode step's, below the prefill's), else the
/// coefficient-wise maximum.
static Expr upperBound(const Expr &a, const Expr &b) {
  if (lessEqualEverywhere(b, a))
    return a;
  if (lessEqualEverywhere(a, b))
    return b;
  return coefficientMax(a, b);
}

void planArena(artifact::Artifact &artifact) {
  const std::size_t count = artifact.buffers.size();
  std::vector<Expr> sizes(count);
  for (const artifact::Buffer &buffer : artifact.buffers)
    if (artifact::isArenaClass(buffer.cls))
      sizes[buffer.id] = alignedUpperBound(artifact::byteSize(buffer), artifact::kArenaAlignment);

  Expr arenaEnd = Expr::constant(0);
  std::vector<bool> placed(count, false);
  for (const artifact::Function &function : artifact.functions) {
    std::vector<std::optional<artifact::LiveRange>> live =
        artifact::liveRanges(function, count);
    // Place in order of first use; a buffer only competes with buffers of this function.
    std::vector<artifact::BufferId> order;
    for (artifact::BufferId id = 0; id < count; ++id)
      if (live[id] && artifact::isArenaClass(artifact.buffers[id].cls))
        order.push_back(id);
    std::stable_sort(order.begin(), order.end(), [&](auto x, auto y) {
      return live[x]->first < live[y]->first;
    });
    std::vector<artifact::BufferId> done;
    for (artifact::BufferId id : order) {
      // First fit: the lowest candidate (0 or the end of a buffer live at the same time) that
      // lies entirely below or above every such buffer, for every B and S. The coefficient-wise
      // maximum of all their ends is always valid, so some candidate fits.
      std::vector<artifact::BufferId> overlapping;
      for (artifact::BufferId other : done)
        if (live[other]->first <= live[id]->last && live[id]->first <= live[other]->last)
          overlapping.push_back(other);
      std::vector<Expr> candidates{Expr::constant(0)};
      Expr top = Expr::constant(0);
      for (artifact::BufferId other : overlapping) {
        candidates.push_back(*artifact.buffers[other].offset + sizes[other]);
        top = coefficientMax(top, candidates.back());
      }
      candidates.push_back(top);
      std::stable_sort(candidates.begin(), candidates.end(),
                       [](const Expr &x, const Expr &y) { return typical(x) < typical(y); });
      Expr offset = top;
      for (const Expr &candidate : candidates) {
        Expr end = candidate + sizes[id];
        bool fits = std::all_of(overlapping.begin(), overlapping.end(), [&](artifact::BufferId other) {
          const Expr &o = *artifact.buffers[other].offset;
          return allLessEqual(o + sizes[other], candidate) || allLessEqual(end, o);
        });
        if (fits) {
          offset = candidate;
          break;
        }
      }
      artifact.buffers[id].offset = offset;
      placed[id] = true;
      arenaEnd = upperBound(arenaEnd, offset + sizes[id]);
      done.push_back(id);
    }
  }
  for (artifact::Buffer &buffer : artifact.buffers)
    if (artifact::isArenaClass(buffer.cls) && !placed[buffer.id])
      buffer.offset = Expr::constant(0);
  artifact.arenaBytes = arenaEnd;
}

} // namespace xlc::codegen
