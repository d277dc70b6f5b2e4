//===- FiniteDifference.h - Finite differences for the reference gradients -*- C++ -*-===//
//
// The analytic float64 backward (runtime/reference/*Backward*) is checked against the five-point
// central difference of the float64 forward,
//     ∂L/∂x_i ≈ (8(L(x + h) − L(x − h)) − (L(x + 2h) − L(x − 2h))) / 12h,   h = step·max(1, |x_i|),
// whose truncation error is O(h⁴·L⁽⁵⁾) and whose rounding error is O(u·Λ·κ/h), Λ the loss's
// magnitude before cancellation (Σ of |terms|) and κ the forward's condition. With h = 1e-4 a
// correct backward agrees to ~1e-9 relative wherever the gradient is not tiny against Λ; where it
// is (an initial state forgotten by e^{−18}, a forget gate saturated at σ(−15)), only the absolute
// error means anything, hence gradientError's floor. A wrong term (a missing path, a sign, a
// factor) shows as O(1). Kinks (the stabiliser's and the normaliser's max, |·|) are crossed with
// probability ~h per element on random inputs; the tests use fixed seeds.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_TEST_REFERENCE_FINITEDIFFERENCE_H
#define XLC_TEST_REFERENCE_FINITEDIFFERENCE_H

#include "runtime/reference/Tensor.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace xlc::ref::testing {

/// Five-point difference quotient of |loss| in the variable |x|, which |loss| reads by reference;
/// |x| is restored exactly.
template <typename Loss> double fivePoint(Loss &loss, double &x, double step) {
  const double saved = x, h = step * std::max(1.0, std::abs(saved));
  auto at = [&](double delta) {
    x = saved + delta;
    return loss();
  };
  const double near = at(h) - at(-h), far = at(2 * h) - at(-2 * h);
  x = saved;
  return (8.0 * near - far) / (12.0 * h);
}

/// Numerical gradient of |loss|() w.r.t. every element of |x|.
template <typename Loss> Tensor numericGradient(Loss &&loss, Tensor &x, double step = 1e-4) {
  Tensor grad(x.shape);
  for (std::size_t i = 0; i < x.data.size(); ++i)
    grad.data[i] = fivePoint(loss, x.data[i], step);
  return grad;
}

/// Same for a scalar.
template <typename Loss> double numericDerivative(Loss &&loss, double &x, double step = 1e-4) {
  return fivePoint(loss, x, step);
}

/// ⟨a, b⟩ over all elements (the "random projection" losses L = ⟨w, y⟩ of the tests).
inline double inner(const Tensor &a, const Tensor &b) {
  double acc = 0.0;
  for (std::size_t i = 0; i < a.data.size(); ++i)
    acc += a.data[i] * b.data[i];
  return acc;
}

/// Σ|a_i b_i|: the magnitude of ⟨a, b⟩ before cancellation (the Λ of the file comment).
inline double innerAbs(const Tensor &a, const Tensor &b) {
  double acc = 0.0;
  for (std::size_t i = 0; i < a.data.size(); ++i)
    acc += std::abs(a.data[i] * b.data[i]);
  return acc;
}

/// ‖analytic − numeric‖₂ / (‖numeric‖₂ + floor·√n): relative where the gradient stands well above
/// |floor| per element, absolute in units of |floor| where it does not. The tests take
/// floor = 1e-3·Λ, so that with their 1e-6 bound an element may be off by ~1e-9·Λ absolute.
inline double gradientError(const Tensor &analytic, const Tensor &numeric, double floor) {
  if (analytic.shape != numeric.shape)
    return std::numeric_limits<double>::infinity();
  double diff = 0.0, norm = 0.0;
  for (std::size_t i = 0; i < numeric.data.size(); ++i) {
    const double d = analytic.data[i] - numeric.data[i];
    if (!std::isfinite(d))
      return std::numeric_limits<double>::infinity();
    diff += d * d;
    norm += numeric.data[i] * numeric.data[i];
  }
  return std::sqrt(diff) /
         (std::sqrt(norm) + floor * std::sqrt(static_cast<double>(numeric.data.size())));
}

} // namespace xlc::ref::testing

#endif // XLC_TEST_REFERENCE_FINITEDIFFERENCE_H
