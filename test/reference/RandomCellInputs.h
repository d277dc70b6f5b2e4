//===- RandomCellInputs.h - Random mLSTM head inputs for the reference tests -*- C++ -*-===//
//
// Gate regimes chosen so that the stabiliser's max and both branches of the normaliser's max are
// exercised; used by the forward-form tests and the backward (finite-difference) tests.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_TEST_REFERENCE_RANDOMCELLINPUTS_H
#define XLC_TEST_REFERENCE_RANDOMCELLINPUTS_H

#include "runtime/reference/BlockOps.h"
#include "runtime/reference/MlstmCell.h"
#include "runtime/reference/Tensor.h"

#include <cstdint>

namespace xlc::ref::testing {

/// Gate pre-activation regimes (values after the 15 soft-cap, as the cell receives them).
enum class Gates {
  Realistic,      // ĩ, f̃ spread over [-15, 15], much mass near the caps
  SevenBInit,     // ĩ ≈ −10 (igate bias init), f̃ ∈ [3, 6] (fgate bias init)
  StrongForget,   // f̃ ∈ [−15, −5]: state forgotten every step
  WeakForget,     // f̃ ∈ [10, 15]: lf ≈ 0, state kept, m carried
};

inline const char *name(Gates g) {
  switch (g) {
  case Gates::Realistic:
    return "realistic";
  case Gates::SevenBInit:
    return "7b-init";
  case Gates::StrongForget:
    return "strong-forget";
  case Gates::WeakForget:
    return "weak-forget";
  }
  return "?";
}

struct HeadInputs {
  Tensor q, k, v, i, f;
};

inline HeadInputs randomHead(Random &rng, std::int64_t seq, std::int64_t dqk, std::int64_t dv, Gates gates,
                      double qkScale = 1.0) {
  HeadInputs in{rng.normal({seq, dqk}, 0.0, qkScale), rng.normal({seq, dqk}, 0.0, qkScale),
                rng.normal({seq, dv}, 0.0, 1.0), Tensor({seq}), Tensor({seq})};
  for (std::int64_t t = 0; t < seq; ++t) {
    double i = 0.0, f = 0.0;
    switch (gates) {
    case Gates::Realistic:
      i = rng.uniform(-30.0, 30.0);
      f = rng.uniform(-30.0, 30.0);
      break;
    case Gates::SevenBInit:
      i = rng.normal(-10.0, 1.0);
      f = rng.uniform(3.0, 6.0) + rng.normal(0.0, 0.5);
      break;
    case Gates::StrongForget:
      i = rng.uniform(-30.0, 30.0);
      f = rng.uniform(-30.0, -5.0);
      break;
    case Gates::WeakForget:
      i = rng.uniform(-30.0, 30.0);
      f = rng.uniform(10.0, 40.0);
      break;
    }
    in.i.data[t] = softCap(i, 15.0);
    in.f.data[t] = softCap(f, 15.0);
  }
  return in;
}

inline MlstmHeadState randomState(Random &rng, std::int64_t dqk, std::int64_t dv) {
  return {rng.normal({dqk, dv}, 0.0, 1.0), rng.normal({dqk}, 0.0, 1.0), rng.uniform(-5.0, 10.0)};
}

} // namespace xlc::ref::testing

#endif // XLC_TEST_REFERENCE_RANDOMCELLINPUTS_H
