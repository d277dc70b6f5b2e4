//===- CpuBackwardOps.cpp - fp32 gradients of the CPU backend's ops --------===//

#include "runtime/exec/cpu/CpuBackwardOps.h"

#include "runtime/exec/cpu/ThreadPool.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace xlc::exec::cpu {
namespace {

double sigmoid(double x) {
  if (x >= 0.0)
    return 1.0 / (1.0 + std::exp(-x));
  const double e = std::exp(x);
  return e / (1.0 + e);
}

/// Runs rowTask(r, partial) for every row, partial the [width] float64 accumulator of r's row
/// block, then adds the blocks' partials into out[width] in block order (file comment of the
/// header: deterministic for any thread count). out null: rowTask gets a scratch accumulator.
template <typename RowTask>
void rowsWithColumnSum(ThreadPool &pool, std::int64_t rows, std::int64_t width, float *out,
                       RowTask rowTask) {
  const std::int64_t blocks = (rows + kRowBlock - 1) / kRowBlock;
  std::vector<double> partial(static_cast<std::size_t>(std::max<std::int64_t>(blocks, 1) * width));
  pool.parallelFor(static_cast<std::size_t>(blocks), [&](std::size_t b) {
    double *acc = width ? &partial[b * static_cast<std::size_t>(width)] : nullptr;
    const std::int64_t end = std::min(rows, static_cast<std::int64_t>(b + 1) * kRowBlock);
    for (std::int64_t r = static_cast<std::int64_t>(b) * kRowBlock; r < end; ++r)
      rowTask(r, acc);
  });
  if (!out)
    return;
  constexpr std::int64_t kCols = 256;
  pool.parallelFor(static_cast<std::size_t>((width + kCols - 1) / kCols), [&](std::size_t cb) {
    const std::int64_t c0 = static_cast<std::int64_t>(cb) * kCols;
    for (std::int64_t c = c0; c < std::min(width, c0 + kCols); ++c) {
      double sum = 0.0;
      for (std::int64_t b = 0; b < blocks; ++b)
        sum += partial[b * width + c];
      out[c] += static_cast<float>(sum);
    }
  });
}

} // namespace

void columnSum(ThreadPool &pool, View x, float *out, std::int64_t rows, std::int64_t cols) {
  rowsWithColumnSum(pool, rows, cols, out, [&](std::int64_t r, double *acc) {
    const float *xr = x.row(r);
    for (std::int64_t c = 0; c < cols; ++c)
      acc[c] += xr[c];
  });
}

void rmsNormBackward(ThreadPool &pool, View x, const float *weight, View dy, float *dx,
                     float *dw, std::int64_t rows, std::int64_t dim, double eps) {
  rowsWithColumnSum(pool, rows, dim, weight ? dw : nullptr, [&](std::int64_t r, double *acc) {
    const float *xr = x.row(r), *dyr = dy.row(r);
    double sumSq = 0.0, gx = 0.0;
    for (std::int64_t j = 0; j < dim; ++j) {
      const double g = static_cast<double>(dyr[j]) * (weight ? weight[j] : 1.0f);
      sumSq += static_cast<double>(xr[j]) * xr[j];
      gx += g * xr[j];
    }
    const double scale = 1.0 / std::sqrt(sumSq / static_cast<double>(dim) + eps);
    const double cubed = scale * scale * scale / static_cast<double>(dim);
    for (std::int64_t j = 0; j < dim; ++j) {
      const double g = static_cast<double>(dyr[j]) * (weight ? weight[j] : 1.0f);
      dx[r * dim + j] = static_cast<float>(scale * g - cubed * xr[j] * gx);
      acc[j] += static_cast<double>(dyr[j]) * xr[j] * scale;
    }
  });
}

void normGateBackward(ThreadPool &pool, View h, const float *weight, View o, View dout, float *dh,
                      float *dO, float *dw, std::int64_t rows, std::int64_t numHeads,
                      std::int64_t headDim, double eps) {
  const std::int64_t width = numHeads * headDim;
  rowsWithColumnSum(pool, rows, width, dw, [&](std::int64_t r, double *acc) {
    const float *hr = h.row(r), *orow = o.row(r), *dr = dout.row(r);
    std::vector<double> xhat(static_cast<std::size_t>(headDim)), g(static_cast<std::size_t>(headDim));
    for (std::int64_t hd = 0; hd < numHeads; ++hd) {
      const std::int64_t base = hd * headDim;
      double mean = 0.0, var = 0.0;
      for (std::int64_t j = 0; j < headDim; ++j)
        mean += hr[base + j];
      mean /= static_cast<double>(headDim);
      for (std::int64_t j = 0; j < headDim; ++j)
        var += (hr[base + j] - mean) * (hr[base + j] - mean);
      const double scale = 1.0 / std::sqrt(var / static_cast<double>(headDim) + eps);
      double gMean = 0.0, gxMean = 0.0;
      for (std::int64_t j = 0; j < headDim; ++j) {
        const std::int64_t c = base + j;
        xhat[j] = (hr[c] - mean) * scale;
        const double sg = sigmoid(orow[c]);
        const double y = xhat[j] * weight[c];
        dO[r * width + c] = static_cast<float>(dr[c] * y * sg * (1.0 - sg));
        const double dy = dr[c] * sg; // ∂L/∂(LN(h)·w)
        g[j] = dy * weight[c];
        gMean += g[j];
        gxMean += g[j] * xhat[j];
        acc[c] += dy * xhat[j];
      }
      gMean /= static_cast<double>(headDim);
      gxMean /= static_cast<double>(headDim);
      for (std::int64_t j = 0; j < headDim; ++j)
        dh[r * width + base + j] = static_cast<float>(scale * (g[j] - gMean - xhat[j] * gxMean));
    }
  });
}

void swigluBackward(ThreadPool &pool, View gate, View up, View dout, float *dgate, float *dup,
                    std::int64_t rows, std::int64_t dim) {
  rowsWithColumnSum(pool, rows, 0, nullptr, [&](std::int64_t r, double *) {
    const float *gr = gate.row(r), *ur = up.row(r), *dr = dout.row(r);
    for (std::int64_t j = 0; j < dim; ++j) {
      const double s = sigmoid(gr[j]);
      dgate[r * dim + j] = static_cast<float>(dr[j] * ur[j] * s * (1.0 + gr[j] * (1.0 - s)));
      dup[r * dim + j] = static_cast<float>(dr[j] * gr[j] * s);
    }
  });
}

std::int64_t embeddingBackward(ThreadPool &pool, const std::int32_t *tokens, View dy,
                               float *dtable, std::int64_t vocab, std::int64_t dim,
                               std::int64_t rows) {
  std::int64_t bad = 0;
  for (std::int64_t r = 0; r < rows && !bad; ++r)
    if (tokens[r] < 0 || tokens[r] >= vocab)
      bad = r + 1;
  constexpr std::int64_t kCols = 64;
  pool.parallelFor(static_cast<std::size_t>((dim + kCols - 1) / kCols), [&](std::size_t cb) {
    const std::int64_t c0 = static_cast<std::int64_t>(cb) * kCols, c1 = std::min(dim, c0 + kCols);
    for (std::int64_t r = 0; r < rows; ++r) {
      if (tokens[r] < 0 || tokens[r] >= vocab)
        continue;
      float *row = dtable + static_cast<std::int64_t>(tokens[r]) * dim;
      const float *d = dy.row(r);
      for (std::int64_t c = c0; c < c1; ++c)
        row[c] += d[c];
    }
  });
  return bad;
}

double crossEntropyBackward(ThreadPool &pool, float *z, const std::int32_t *targets,
                            std::int64_t rows, std::int64_t vocab, double cap, double gradScale,
                            float *lossRows) {
  std::vector<double> loss(static_cast<std::size_t>(rows), 0.0);
  pool.parallelFor(static_cast<std::size_t>(rows), [&](std::size_t ru) {
    const std::int64_t r = static_cast<std::int64_t>(ru);
    float *zr = z + r * vocab;
    const std::int32_t target = targets[r];
    if (target < 0) {
      std::fill(zr, zr + vocab, 0.0f);
      return;
    }
    std::vector<double> l(static_cast<std::size_t>(vocab));
    double top = -std::numeric_limits<double>::infinity();
    for (std::int64_t v = 0; v < vocab; ++v) {
      l[v] = cap > 0.0 ? cap * std::tanh(zr[v] / cap) : zr[v];
      top = std::max(top, l[v]);
    }
    double sum = 0.0;
    for (std::int64_t v = 0; v < vocab; ++v)
      sum += std::exp(l[v] - top);
    loss[ru] = top + std::log(sum) - l[target];
    for (std::int64_t v = 0; v < vocab; ++v) {
      double d = std::exp(l[v] - top) / sum - (v == target ? 1.0 : 0.0);
      if (cap > 0.0) {
        const double t = l[v] / cap;
        d *= 1.0 - t * t;
      }
      zr[v] = static_cast<float>(gradScale * d);
    }
  });
  double total = 0.0;
  for (std::size_t r = 0; r < loss.size(); ++r) {
    total += loss[r];
    if (lossRows)
      lossRows[r] = static_cast<float>(loss[r]);
  }
  return total;
}

} // namespace xlc::exec::cpu
