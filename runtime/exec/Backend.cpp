//===- Backend.cpp - Shared argument checks of the backends ---------------===//

#include "runtime/exec/Backend.h"

#include "runtime/support/Error.h"

namespace xlc::exec {

void Backend::checkSlots(std::uint64_t firstSlot, std::uint64_t count,
                         std::string_view what) const {
  check(count >= 1 && firstSlot < limits_.maxBatch && count <= limits_.maxBatch - firstSlot,
        "{}: slots [{}, {}) are outside the {} slot(s) this backend was created for", what,
        firstSlot, firstSlot + count, limits_.maxBatch);
}

const artifact::Function &Backend::checkRun(std::string_view function, std::uint64_t firstSlot,
                                            std::uint64_t batch, std::uint64_t seq,
                                            std::span<const std::int32_t> tokens,
                                            std::span<float> logits, Logits which) const {
  const artifact::Function *fn = artifact_->findFunction(function);
  check(fn != nullptr, "{}: the artifact has no function '{}'", artifact_->label(), function);
  checkSlots(firstSlot, batch, fmt::format("{}", function));
  check(seq >= 1 && seq <= limits_.maxSeq,
        "{}: {} tokens per sequence is outside [1, {}] (the backend's maximum sequence length)",
        function, seq, limits_.maxSeq);
  check(function != "decode_step" || seq == 1, "decode_step: takes one token per sequence, got {}",
        seq);
  check(tokens.size() == batch * seq, "{}: expected {} token ids ({} sequences x {}), got {}",
        function, batch * seq, batch, seq, tokens.size());
  const std::uint64_t rows = which == Logits::AllPositions ? batch * seq : batch;
  check(logits.size() == rows * vocabSize(),
        "{}: the logits span holds {} floats, expected {} ({} rows x vocabulary {})", function,
        logits.size(), rows * vocabSize(), rows, vocabSize());
  check(fn->inputs.size() == 1 && fn->outputs.size() == 1,
        "{}: function '{}' must take one token input and return one logits output (has {} "
        "inputs, {} outputs)",
        artifact_->label(), function, fn->inputs.size(), fn->outputs.size());
  return *fn;
}

} // namespace xlc::exec
