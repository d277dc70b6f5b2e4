//===- BlockOps.cpp - float64 reference of the block-level ops ------------===//

#include "runtime/reference/BlockOps.h"

#include "runtime/support/Error.h"

namespace xlc::ref {
namespace {

/// Rows × features view of a tensor of rank ≥ 1 (the feature axis is the last one).
struct RowView {
  std::int64_t rows;
  std::int64_t features;
};

RowView rowsOf(const Tensor &x, std::string_view what) {
  check(x.rank() >= 1, "{}: expected a tensor of rank >= 1, got shape {}", what,
        shapeString(x.shape));
  std::int64_t features = x.dim(-1);
  return {features == 0 ? 0 : x.numel() / features, features};
}

void checkSameShape(const Tensor &a, const Tensor &b, std::string_view op) {
  check(a.shape == b.shape, "{}: operand shapes differ ({} vs {})", op, shapeString(a.shape),
        shapeString(b.shape));
}

template <typename Fn> Tensor map(const Tensor &x, Fn fn) {
  Tensor y(x.shape);
  for (std::size_t i = 0; i < x.data.size(); ++i)
    y.data[i] = fn(x.data[i]);
  return y;
}

template <typename Fn> Tensor zipWith(const Tensor &a, const Tensor &b, std::string_view op, Fn fn) {
  checkSameShape(a, b, op);
  Tensor y(a.shape);
  for (std::size_t i = 0; i < a.data.size(); ++i)
    y.data[i] = fn(a.data[i], b.data[i]);
  return y;
}

} // namespace

Tensor embedding(const Tensor &table, std::span<const std::int64_t> tokens,
                 const Shape &tokenShape) {
  check(table.rank() == 2, "embedding: table must be [V, D], got {}", shapeString(table.shape));
  check(static_cast<std::int64_t>(tokens.size()) == numElements(tokenShape),
        "embedding: {} token ids for token shape {}", tokens.size(), shapeString(tokenShape));
  std::int64_t vocab = table.dim(0), dim = table.dim(1);
  Shape outShape = tokenShape;
  outShape.push_back(dim);
  Tensor out(outShape);
  for (std::size_t p = 0; p < tokens.size(); ++p) {
    std::int64_t token = tokens[p];
    check(token >= 0 && token < vocab, "embedding: token id {} at flat position {} is outside [0, {})",
          token, p, vocab);
    for (std::int64_t j = 0; j < dim; ++j)
      out.data[p * dim + j] = table.data[token * dim + j];
  }
  return out;
}

Tensor rmsNorm(const Tensor &x, const Tensor &weight, double eps) {
  auto [rows, d] = rowsOf(x, "rmsNorm");
  checkShape(weight, {d}, "rmsNorm weight");
  Tensor y(x.shape);
  for (std::int64_t r = 0; r < rows; ++r) {
    const double *xr = &x.data[r * d];
    double sumSq = 0.0;
    for (std::int64_t j = 0; j < d; ++j)
      sumSq += xr[j] * xr[j];
    double scale = 1.0 / std::sqrt(sumSq / static_cast<double>(d) + eps);
    for (std::int64_t j = 0; j < d; ++j)
      y.data[r * d + j] = xr[j] * scale * weight.data[j];
  }
  return y;
}

Tensor linear(const Tensor &x, const Tensor &weight, const Tensor *bias) {
  auto [rows, in] = rowsOf(x, "linear");
  check(weight.rank() == 2 && weight.dim(1) == in,
        "linear: weight must be [out, {}] for input {}, got {}", in, shapeString(x.shape),
        shapeString(weight.shape));
  std::int64_t out = weight.dim(0);
  if (bias)
    checkShape(*bias, {out}, "linear bias");
  Shape yShape = x.shape;
  yShape.back() = out;
  Tensor y(yShape);
  for (std::int64_t r = 0; r < rows; ++r) {
    const double *xr = &x.data[r * in];
    for (std::int64_t o = 0; o < out; ++o) {
      const double *wo = &weight.data[o * in];
      double acc = bias ? bias->data[o] : 0.0;
      for (std::int64_t j = 0; j < in; ++j)
        acc += xr[j] * wo[j];
      y.data[r * out + o] = acc;
    }
  }
  return y;
}

Tensor softCap(const Tensor &x, double cap) {
  check(cap > 0.0, "softCap: cap must be positive, got {}", cap);
  return map(x, [cap](double v) { return softCap(v, cap); });
}

Tensor logSigmoid(const Tensor &x) {
  return map(x, [](double v) { return logSigmoid(v); });
}

Tensor multiHeadLayerNorm(const Tensor &x, const Tensor &weight, std::int64_t numHeads,
                          double eps) {
  auto [rows, features] = rowsOf(x, "multiHeadLayerNorm");
  check(numHeads > 0 && features % numHeads == 0,
        "multiHeadLayerNorm: {} features do not split into {} heads", features, numHeads);
  checkShape(weight, {features}, "multiHeadLayerNorm weight");
  std::int64_t dv = features / numHeads;
  Tensor y(x.shape);
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t h = 0; h < numHeads; ++h) {
      std::int64_t base = r * features + h * dv;
      double mean = 0.0;
      for (std::int64_t j = 0; j < dv; ++j)
        mean += x.data[base + j];
      mean /= static_cast<double>(dv);
      double var = 0.0; // biased (divide by DV), as torch's layer_norm
      for (std::int64_t j = 0; j < dv; ++j) {
        double c = x.data[base + j] - mean;
        var += c * c;
      }
      var /= static_cast<double>(dv);
      double scale = 1.0 / std::sqrt(var + eps);
      for (std::int64_t j = 0; j < dv; ++j)
        y.data[base + j] = (x.data[base + j] - mean) * scale * weight.data[h * dv + j];
    }
  }
  return y;
}

Tensor outputGate(const Tensor &oPre, const Tensor &h) {
  return zipWith(oPre, h, "outputGate", [](double o, double v) { return sigmoid(o) * v; });
}

Tensor swiglu(const Tensor &gate, const Tensor &up) {
  return zipWith(gate, up, "swiglu", [](double g, double u) { return silu(g) * u; });
}

Tensor add(const Tensor &a, const Tensor &b) {
  return zipWith(a, b, "add", [](double x, double y) { return x + y; });
}

Tensor lmHead(const Tensor &x, const Tensor &weight, std::optional<double> logitSoftCap) {
  Tensor logits = linear(x, weight);
  return logitSoftCap ? softCap(logits, *logitSoftCap) : logits;
}

} // namespace xlc::ref
