//===- Expr.h - Sizes as affine expressions over batch and sequence -*- C++ -*-===//
//
// Buffer sizes, arena offsets, launch grids and GEMM extents depend on the batch size B
// (sequences per call) and the sequence length S (tokens per sequence in this call, 1 for a
// decode step). The artifact writes each of them as
//
//   ceil((c + b·B + s·S + bs·B·S) / div)      c, b, s, bs ≥ 0,  div ≥ 1
//
// Every coefficient is non-negative, so every expression is non-decreasing in B and in S: its
// largest value over 1 ≤ B ≤ maxBatch, 1 ≤ S ≤ maxSeq is at (maxBatch, maxSeq) and its smallest at
// (1, 1). Validate.cpp relies on that. Evaluation is exact in u64 and reports overflow instead of
// wrapping.
//
//===----------------------------------------------------------------------===//
#ifndef XLC_RUNTIME_ARTIFACT_EXPR_H
#define XLC_RUNTIME_ARTIFACT_EXPR_H

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace xlc::artifact {

/// A size symbol a launch argument can pass to a kernel: the batch, the sequence length, or
/// their product (the number of tokens in the call).
enum class Symbol : std::uint8_t { B, S, BS };

/// "B", "S" or "BS" (the artifact's spelling).
std::string_view symbolName(Symbol symbol);
std::optional<Symbol> parseSymbol(std::string_view name);

/// The symbol's value at (B, S), or nullopt when B·S overflows u64.
std::optional<std::uint64_t> symbolValue(Symbol symbol, std::uint64_t batch, std::uint64_t seq);

struct Expr {
  std::uint64_t c = 0;   ///< constant term
  std::uint64_t b = 0;   ///< coefficient of B
  std::uint64_t s = 0;   ///< coefficient of S
  std::uint64_t bs = 0;  ///< coefficient of B·S
  std::uint64_t div = 1; ///< ceil-divisor of the whole sum; 0 is invalid (evaluation fails)

  static Expr constant(std::uint64_t value) { return {value, 0, 0, 0, 1}; }
  static Expr batch(std::uint64_t k = 1) { return {0, k, 0, 0, 1}; }
  static Expr seq(std::uint64_t k = 1) { return {0, 0, k, 0, 1}; }
  static Expr batchSeq(std::uint64_t k = 1) { return {0, 0, 0, k, 1}; }

  /// Whether the value is the same for every B and S.
  bool isConstant() const { return b == 0 && s == 0 && bs == 0; }

  /// The same function with div = 1 when div divides every coefficient; otherwise unchanged.
  /// Two normalized expressions are the same function of (B, S) exactly when their fields are
  /// equal, so compare normalized expressions with ==.
  Expr normalized() const;

  /// The value at (B, S), or nullopt when any intermediate overflows u64 or div is 0.
  std::optional<std::uint64_t> tryEvaluate(std::uint64_t batch, std::uint64_t seq) const;

  /// The value at (B, S). Throws xlc::Error "<owner>: <expr> overflows u64 at B=.., S=.."
  /// (or names the zero divisor), so the message says which buffer, kernel or step is at fault.
  std::uint64_t evaluate(std::uint64_t batch, std::uint64_t seq,
                         std::string_view owner = "expression") const;

  /// Human-readable form: "0", "4096", "8192*B*S", "64 + 2*S", "ceil((64 + 2*S)/64)".
  std::string toString() const;

  friend bool operator==(const Expr &, const Expr &) = default;
};

// Builders for writers. They keep div = 1 operands exact and throw xlc::Error on u64 overflow or
// when the result is not representable (a sum or multiple of an expression that has a divisor).
Expr operator+(const Expr &lhs, const Expr &rhs);
Expr operator*(const Expr &lhs, std::uint64_t factor);
Expr operator*(std::uint64_t factor, const Expr &rhs);
/// ceil(e / d). Uses ceil(ceil(x/a)/b) = ceil(x/(a·b)) when e already has a divisor.
Expr ceilDiv(const Expr &e, std::uint64_t d);

} // namespace xlc::artifact

#endif // XLC_RUNTIME_ARTIFACT_EXPR_H
