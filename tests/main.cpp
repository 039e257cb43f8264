// Test runner: doctest, plus a plain closing line
// "tests: N passed, M failed, K skipped" that CI reads (doctest's own summary is
// not recognised there). Skipped = registered with doctest::skip(true), e.g. the
// tests that need MNIST when it is absent (tests/mnist.hpp); test cases a filter
// leaves out are not counted, nor are skipped ones in a suite that
// --test-suite-exclude=NAME,... leaves out (tools/test.sh's sanitizer run).
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>
#include <set>
#include <sstream>
#include <string>

#ifdef TAPE_TEST_MPI
// tests/dist: every rank runs every case; the summary comes from rank 0 and
// counts a case failed when it failed on any rank.
#include <tape/dist/dist.hpp>
#include <tape/core/tensor.hpp>
#endif

namespace {
int g_passed = 0, g_failed = 0, g_skipped = 0;
std::set<std::string> g_excluded_suites;  ///< from --test-suite-exclude= / -tse= (exact names)

struct Counter : doctest::IReporter {
  explicit Counter(const doctest::ContextOptions&) {}
  void report_query(const doctest::QueryData&) override {}
  void test_run_start() override {}
  void test_run_end(const doctest::TestRunStats&) override {}
  void test_case_start(const doctest::TestCaseData&) override {}
  void test_case_reenter(const doctest::TestCaseData&) override {}
  void test_case_end(const doctest::CurrentTestCaseStats& s) override {
    if (s.testCaseSuccess) ++g_passed;
    else ++g_failed;
  }
  void test_case_exception(const doctest::TestCaseException&) override {}
  void subcase_start(const doctest::SubcaseSignature&) override {}
  void subcase_end() override {}
  void log_assert(const doctest::AssertData&) override {}
  void log_message(const doctest::MessageData&) override {}
  // doctest also calls this for test cases a filter leaves out; only count the
  // ones that asked to be skipped.
  void test_case_skipped(const doctest::TestCaseData& tc) override {
    if (tc.m_skip && !g_excluded_suites.count(tc.m_test_suite)) ++g_skipped;
  }
};
REGISTER_LISTENER("counter", 1, Counter);
}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    for (const char* prefix : {"--test-suite-exclude=", "-tse=", "--dt-test-suite-exclude=", "--dt-tse="}) {
      if (a.rfind(prefix, 0) != 0) continue;
      std::stringstream names(a.substr(std::string(prefix).size()));
      for (std::string n; std::getline(names, n, ',');) g_excluded_suites.insert(n);
    }
  }
#ifdef TAPE_TEST_MPI
  tape::dist::init(&argc, &argv);
#endif
  doctest::Context ctx(argc, argv);
  const int rc = ctx.run();
  if (ctx.shouldExit()) return rc;
#ifdef TAPE_TEST_MPI
  {
    tape::Tensor c = tape::full({2}, 0.0, tape::Dtype::Int64);
    c.data<int64_t>()[0] = -g_passed;  // Max of −passed: the fewest passes
    c.data<int64_t>()[1] = g_failed;
    tape::dist::all_reduce(c, tape::dist::ReduceOp::Max);
    g_passed = int(-c.data<int64_t>()[0]);
    g_failed = int(c.data<int64_t>()[1]);
    const bool root = tape::dist::rank() == 0;
    const int world = tape::dist::world_size();
    tape::dist::finalize();
    if (!root) return g_failed != 0;
    std::printf("%d ranks; a case counts as failed when it failed on any rank\n", world);
  }
#endif
  std::printf("tests: %d passed, %d failed, %d skipped\n", g_passed, g_failed, g_skipped);
  std::fflush(stdout);
  return rc != 0 || g_failed != 0 ? 1 : 0;
}
