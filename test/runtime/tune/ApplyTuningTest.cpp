//===- ApplyTuningTest.cpp - An artifact's kernels from a tuning database --===//
//
// xlc-compile --tuning-db's transform (runtime/tune/ApplyTuning.h) on the compiled sig/tied
// fixture: a record's choice replaces the default in every launch of it, with its provenance and
// as a valid artifact that round-trips; records at two batch sizes become a batch variant; a
// choice equal to the default, or no record, changes nothing; an invalid choice is refused with
// the artifact untouched.
//
//===----------------------------------------------------------------------===//
#include "runtime/artifact/Serialize.h"
#include "runtime/artifact/Validate.h"
#include "runtime/kernels/KernelFamily.h"
#include "runtime/kernels/Tuning.h"
#include "runtime/support/Error.h"
#include "runtime/tune/ApplyTuning.h"

#include <gtest/gtest.h>

#include <set>

namespace xlc::tune {
namespace {
namespace art = xlc::artifact;

art::Artifact fixture() { return art::loadArtifact(XLC_TUNE_FIXTURE); }

/// The first kernel of |family| in |a|.
const art::Kernel &kernelOf(const art::Artifact &a, const std::string &family) {
  for (const art::Kernel &k : a.kernels)
    if (k.family == family)
      return k;
  throw Error("no " + family + " kernel in the fixture");
}

/// A record for |kernel| at (batch, 1024) choosing |choice| (a configuration of its space), the
/// default timed at 10 us and the choice at 8.
Record recordFor(const art::Kernel &kernel, const kernels::Config &choice, std::int64_t batch) {
  const kernels::FamilyDef &family = *kernels::findFamily(kernel.family);
  auto candidate = [&](const kernels::Config &config, double us) {
    Candidate c;
    c.tile = kernels::variantTile(family, config);
    for (const kernels::TuningKnob &knob : kernels::tuningKnobs(family, config))
      c.knobs[std::string(knob.field)] = config[std::string(knob.field)];
    c.medianUs = us;
    c.p20Us = us;
    c.p80Us = us;
    c.repeats = 10;
    return c;
  };
  Record r;
  r.function = "prefill";
  r.family = kernel.family;
  r.problem = nlohmann::json::parse(kernels::problemKey(family, kernel.config));
  r.batch = batch;
  r.seq = 1024;
  r.defaultTile = kernels::variantTile(family, kernel.config);
  r.chosenTile = kernels::variantTile(family, choice);
  r.candidates.push_back(candidate(kernel.config, 10.0));
  if (choice != kernel.config)
    r.candidates.push_back(candidate(choice, 8.0));
  r.measured = "2026-12-08T00:00:00Z";
  return r;
}

Database databaseOf(std::vector<Record> records) {
  Database db;
  db.environment.gpu = "NVIDIA H100 80GB HBM3";
  db.records = std::move(records);
  return db;
}

/// Launch steps of |function| in |a| whose kernel is of |family|.
std::vector<const art::LaunchStep *> launchesOf(const art::Artifact &a, const std::string &family,
                                                const std::string &function = "prefill") {
  std::vector<const art::LaunchStep *> out;
  for (const art::Step &s : a.findFunction(function)->steps)
    if (const auto *l = std::get_if<art::LaunchStep>(&s.body))
      if (a.kernels[l->kernel].family == family)
        out.push_back(l);
  return out;
}

TEST(ApplyTuning, AChoiceReplacesTheDefaultEverywhereWithItsProvenance) {
  art::Artifact a = fixture();
  const art::Kernel base = kernelOf(a, "rms_norm");
  const kernels::FamilyDef &family = *kernels::findFamily("rms_norm");
  const kernels::Config choice = kernels::tuningSpace(family, base.config).valid.back();
  ASSERT_NE(choice, base.config);
  const std::size_t rmsLaunches = launchesOf(a, "rms_norm").size();
  const ApplyReport report = applyTuning(a, databaseOf({recordFor(base, choice, 1)}));

  EXPECT_GE(report.tunedLaunches, 1u);
  EXPECT_EQ(report.kernelsAdded, 1u);
  EXPECT_EQ(report.kernelsDropped, 0u); // decode_step still launches the default
  for (const art::LaunchStep *l : launchesOf(a, "rms_norm")) {
    const art::Kernel &k = a.kernels[l->kernel];
    if (k.config["dim"] != base.config["dim"] ||
        k.config["has_weight"] != base.config["has_weight"])
      continue; // another rms_norm problem
    EXPECT_EQ(k.config, choice);
    EXPECT_EQ(k.tile, kernels::variantTile(family, choice));
    ASSERT_TRUE(k.tuning.has_value());
    EXPECT_EQ(k.tuning->defaultTile, kernels::variantTile(family, base.config));
    EXPECT_EQ(k.tuning->defaultUs, 10.0);
    EXPECT_EQ(k.tuning->chosenUs, 8.0);
    EXPECT_TRUE(l->byBatch.empty());
  }
  EXPECT_EQ(launchesOf(a, "rms_norm").size(), rmsLaunches);
  // The record was measured in prefill: decode_step's launches of the same kernel keep it.
  for (const art::LaunchStep *l : launchesOf(a, "rms_norm", "decode_step"))
    EXPECT_FALSE(a.kernels[l->kernel].tuning.has_value()) << a.kernels[l->kernel].name;
  EXPECT_NO_THROW(art::validate(a, 8, 4096));
  EXPECT_NO_THROW(kernels::checkFamilies(a));
  const art::Artifact back = art::parseArtifact(art::serialize(a), "tuned.xlca");
  EXPECT_EQ(back, a);
}

TEST(ApplyTuning, TwoMeasuredBatchesBecomeABatchVariant) {
  art::Artifact a = fixture();
  const art::Kernel base = kernelOf(a, "rms_norm");
  const kernels::FamilyDef &family = *kernels::findFamily("rms_norm");
  const std::vector<kernels::Config> valid = kernels::tuningSpace(family, base.config).valid;
  ASSERT_GE(valid.size(), 3u);
  applyTuning(a, databaseOf({recordFor(base, valid[1], 1), recordFor(base, valid[2], 8)}));
  bool seen = false;
  for (const art::LaunchStep *l : launchesOf(a, "rms_norm")) {
    if (l->byBatch.empty())
      continue;
    seen = true;
    ASSERT_EQ(l->byBatch.size(), 1u);
    EXPECT_EQ(l->byBatch[0].maxBatch, 1u);
    EXPECT_EQ(a.kernels[l->kernelFor(1)].config, valid[1]);
    EXPECT_EQ(a.kernels[l->kernelFor(2)].config, valid[2]);
    EXPECT_EQ(a.kernels[l->kernelFor(64)].config, valid[2]);
  }
  EXPECT_TRUE(seen);
  EXPECT_NO_THROW(art::validate(a, 8, 4096));
}

TEST(ApplyTuning, TheCompilersBatchVariantsKeepWhatWasNotMeasured) {
  // The fused state pass has a narrow-tile variant for B <= small_batch_max (33 here).
  art::Artifact a = fixture();
  const std::vector<const art::LaunchStep *> fused = launchesOf(a, "mlstm_chunk_fused");
  ASSERT_FALSE(fused.empty());
  ASSERT_EQ(fused[0]->byBatch.size(), 1u);
  const std::uint64_t small = fused[0]->byBatch[0].maxBatch;
  const art::Kernel wide = a.kernels[fused[0]->kernel];
  const art::Kernel narrow = a.kernels[fused[0]->byBatch[0].kernel];
  ASSERT_NE(wide.config, narrow.config);

  // Measured only above the small batches (the narrow tile won there too): the small batches
  // keep the narrow kernel they had, the large ones take the choice.
  const std::int64_t big = static_cast<std::int64_t>(small) + 31;
  art::Artifact large = a;
  applyTuning(large, databaseOf({recordFor(wide, narrow.config, big)}));
  for (const art::LaunchStep *l : launchesOf(large, "mlstm_chunk_fused")) {
    EXPECT_EQ(large.kernels[l->kernelFor(1)].config, narrow.config);
    EXPECT_EQ(large.kernels[l->kernelFor(small + 1)].config, narrow.config);
    EXPECT_EQ(large.kernels[l->kernelFor(4096)].config, narrow.config);
  }
  // A record at the large batch choosing the default, none at the small: nothing changes.
  art::Artifact same = a;
  const ApplyReport report = applyTuning(same, databaseOf({recordFor(wide, wide.config, big)}));
  EXPECT_EQ(same, a);
  EXPECT_EQ(report.tunedLaunches, 0u);
  // Measured at batch 1 against the narrow kernel (the wide one won): it replaces the narrow
  // kernel wherever that ran (B <= small); the large batches keep the wide one they had.
  art::Artifact one = a;
  applyTuning(one, databaseOf({recordFor(narrow, wide.config, 1)}));
  for (const art::LaunchStep *l : launchesOf(one, "mlstm_chunk_fused")) {
    EXPECT_EQ(one.kernels[l->kernelFor(1)].config, wide.config);
    EXPECT_EQ(one.kernels[l->kernelFor(small)].config, wide.config);
    EXPECT_EQ(one.kernels[l->kernelFor(small + 1)].config, wide.config);
    EXPECT_TRUE(l->byBatch.empty()); // wide everywhere: no variant left
  }
  // Measured at both: each range takes its own choice.
  art::Artifact both = a;
  applyTuning(both, databaseOf({recordFor(narrow, wide.config, 1),
                                recordFor(wide, narrow.config, big)}));
  for (const art::LaunchStep *l : launchesOf(both, "mlstm_chunk_fused")) {
    EXPECT_EQ(both.kernels[l->kernelFor(1)].config, wide.config);
    EXPECT_EQ(both.kernels[l->kernelFor(4096)].config, narrow.config);
  }
  EXPECT_NO_THROW(art::validate(one, 64, 1024));
}

TEST(ApplyTuning, ASecondDatabaseOnATunedArtifactNamesItsKernelsApart) {
  art::Artifact a = fixture();
  const art::Kernel base = kernelOf(a, "rms_norm");
  const std::vector<kernels::Config> valid =
      kernels::tuningSpace(*kernels::findFamily("rms_norm"), base.config).valid;
  applyTuning(a, databaseOf({recordFor(base, valid[1], 1)}));
  Record again = recordFor(base, valid[2], 1);
  again.function = "decode_step";
  EXPECT_NO_THROW(applyTuning(a, databaseOf({again})));
  std::set<std::string> names;
  for (const art::Kernel &k : a.kernels)
    EXPECT_TRUE(names.insert(k.name).second) << k.name;
  EXPECT_NO_THROW(art::validate(a, 8, 1024));
}

TEST(ApplyTuning, TheDefaultOrNoRecordChangesNothing) {
  const art::Artifact original = fixture();
  art::Artifact a = original;
  const art::Kernel base = kernelOf(a, "rms_norm");
  ApplyReport report = applyTuning(a, databaseOf({recordFor(base, base.config, 1)}));
  EXPECT_EQ(a, original);
  EXPECT_EQ(report.tunedLaunches, 0u);
  report = applyTuning(a, databaseOf({}));
  EXPECT_EQ(a, original);
  EXPECT_FALSE(report.untuned.empty());
  EXPECT_EQ(report.kernelsDropped, 0u);
}

TEST(ApplyTuning, AnInvalidChoiceIsRefusedAndTheArtifactKept) {
  const art::Artifact original = fixture();
  art::Artifact a = original;
  const art::Kernel base = kernelOf(a, "rms_norm");
  kernels::Config bad = base.config;
  bad["threads"] = 48; // not whole warps
  try {
    applyTuning(a, databaseOf({recordFor(base, bad, 1)}));
    FAIL() << "an invalid choice was applied";
  } catch (const Error &e) {
    EXPECT_NE(std::string(e.what()).find("not a valid variant"), std::string::npos) << e.what();
  }
  EXPECT_EQ(a, original);
}

TEST(ApplyTuning, StalenessAtCompileTimeNamesHeadersAndVersion) {
  Database db;
  db.environment.headers = "abc";
  db.environment.xlc = "0.1.0";
  EXPECT_EQ(compileTimeStaleness(db, "abc", "0.1.0"), "");
  EXPECT_EQ(compileTimeStaleness(db, "def", "0.2.0"),
            "device headers: database abc, this compiler def; xlc: database 0.1.0, this "
            "compiler 0.2.0");
}

} // namespace
} // namespace xlc::tune
