#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "common/fd.h"
#include "common/log.h"
#include "common/memory.h"
#include "common/metrics.h"
#include "common/names.h"
#include "common/size.h"

namespace tierfs {

TEST(ParseSize, AcceptsTheUsualSpellings) {
  EXPECT_EQ(*ParseSize("0"), 0u);
  EXPECT_EQ(*ParseSize("4096"), 4096u);
  EXPECT_EQ(*ParseSize("64k"), 64u << 10);
  EXPECT_EQ(*ParseSize("512M"), 512ull << 20);
  EXPECT_EQ(*ParseSize("4G"), 4ull << 30);
  EXPECT_EQ(*ParseSize("2Gi"), 2ull << 30);
  EXPECT_EQ(*ParseSize("2GiB"), 2ull << 30);
  EXPECT_EQ(*ParseSize("1.5G"), 3ull << 29);
  EXPECT_EQ(*ParseSize("1T"), 1ull << 40);
}

TEST(ParseSize, RejectsGarbage) {
  for (const char* bad : {"", "G", "-1", "12X", "1GG", "1Gx", "abc", "1 G", "99999999999999999999",
                          "20000000P", "0x10"}) {
    auto r = ParseSize(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_EQ(r.status().error(), EINVAL);
      EXPECT_NE(r.status().message().find("invalid size"), std::string::npos);
    }
  }
}

TEST(Names, UnsafeNamesAreRefused) {
  EXPECT_TRUE(IsSafeName("a"));
  EXPECT_TRUE(IsSafeName("with space"));
  EXPECT_TRUE(IsSafeName("-leading-dash"));
  EXPECT_TRUE(IsSafeName("ünïcödé ✓"));
  EXPECT_TRUE(IsSafeName("..."));
  EXPECT_FALSE(IsSafeName(""));
  EXPECT_FALSE(IsSafeName("."));
  EXPECT_FALSE(IsSafeName(".."));
  EXPECT_FALSE(IsSafeName("a/b"));
  EXPECT_FALSE(IsSafeName("/"));
  EXPECT_FALSE(IsSafeName(std::string("a\0b", 3)));
  EXPECT_FALSE(IsSafeName(std::string(256, 'x')));
  EXPECT_TRUE(IsSafeName(std::string(255, 'x')));
}

TEST(Names, SymlinksMustStayInsideTheTree) {
  EXPECT_TRUE(IsContainedSymlink("file", 0));
  EXPECT_TRUE(IsContainedSymlink("dir/file", 0));
  EXPECT_TRUE(IsContainedSymlink("../file", 1));
  EXPECT_TRUE(IsContainedSymlink("./a/../b", 0));
  EXPECT_FALSE(IsContainedSymlink("../file", 0));
  EXPECT_FALSE(IsContainedSymlink("a/../../file", 0));
  EXPECT_FALSE(IsContainedSymlink("/etc/passwd", 3));
  EXPECT_FALSE(IsContainedSymlink("", 0));
}

}  // namespace tierfs

namespace tierfs {

TEST(Metrics, RendersCountersHistogramsAndCollectorsInTextFormat) {
  MetricsRegistry r;
  r.GetCounter("t_requests_total", "requests", {{"op", "read"}, {"code", "ok"}}).Add(3);
  r.GetCounter("t_requests_total", "requests", {{"op", "read"}, {"code", "EIO"}}).Add();
  // The same name and labels is the same counter.
  r.GetCounter("t_requests_total", "requests", {{"op", "read"}, {"code", "ok"}}).Add(2);
  Histogram& h = r.GetHistogram("t_seconds", "latency", {0.1, 1});
  h.Observe(0.05);
  h.Observe(0.5);
  h.Observe(0.5);
  h.Observe(7);
  int id = r.AddCollector([](MetricsWriter& w) {
    w.Gauge("t_bytes", "bytes", {{"tier", "ram"}}, 4096);
    w.Gauge("t_bytes", "bytes", {{"tier", "odd\"name\\\n"}}, 1.5);
  });
  std::string text = r.Render();
  EXPECT_NE(text.find("# HELP t_requests_total requests\n# TYPE t_requests_total counter\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("t_requests_total{op=\"read\",code=\"ok\"} 5\n"), std::string::npos);
  EXPECT_NE(text.find("t_requests_total{op=\"read\",code=\"EIO\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("# TYPE t_seconds histogram\n"), std::string::npos);
  EXPECT_NE(text.find("t_seconds_bucket{le=\"0.1\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("t_seconds_bucket{le=\"1\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("t_seconds_bucket{le=\"+Inf\"} 4\n"), std::string::npos);
  EXPECT_NE(text.find("t_seconds_count 4\n"), std::string::npos);
  EXPECT_NE(text.find("t_seconds_sum 8.05\n"), std::string::npos) << text;
  EXPECT_NE(text.find("t_bytes{tier=\"ram\"} 4096\n"), std::string::npos);
  EXPECT_NE(text.find("t_bytes{tier=\"odd\\\"name\\\\\\n\"} 1.5\n"), std::string::npos) << text;
  // One HELP/TYPE per family.
  size_t first = text.find("# TYPE t_bytes gauge");
  EXPECT_EQ(text.find("# TYPE t_bytes gauge", first + 1), std::string::npos);
  r.RemoveCollector(id);
  EXPECT_EQ(r.Render().find("t_bytes"), std::string::npos);
}

TEST(Metrics, CountersAreExactUnderConcurrentUpdates) {
  MetricsRegistry r;
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&r] {
      for (int i = 0; i < 10000; ++i) {
        r.GetCounter("c_total", "c", {{"k", "v"}}).Add();
        r.GetHistogram("h_seconds", "h", {1}).Observe(0.5);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(r.GetCounter("c_total", "c", {{"k", "v"}}).value(), 80000u);
  EXPECT_EQ(r.GetHistogram("h_seconds", "h", {1}).Read().cumulative.back(), 80000u);
}

TEST(LogLimiter, AdmitsABurstPerPeriodAndCountsWhatItDropped) {
  LogLimiter limiter(3, std::chrono::milliseconds(200));
  uint64_t suppressed = 99;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(limiter.Admit(&suppressed));
    EXPECT_EQ(suppressed, 0u);
  }
  for (int i = 0; i < 50; ++i) EXPECT_FALSE(limiter.Admit(&suppressed));
  std::this_thread::sleep_for(std::chrono::milliseconds(250));
  ASSERT_TRUE(limiter.Admit(&suppressed));
  EXPECT_EQ(suppressed, 50u);
  ASSERT_TRUE(limiter.Admit(&suppressed));
  EXPECT_EQ(suppressed, 0u);
}

}  // namespace tierfs

namespace tierfs {

// A Result made from an OK status has no value to give: it must never look like success,
// nor carry errno 0 (which would reach the kernel as a successful reply without data).
TEST(Result, AnOkStatusIsNeverAValue) {
#ifdef NDEBUG
  Result<int> r(Status::Ok());
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.status().error(), EIO);
#else
  EXPECT_DEATH({ Result<int> r(Status::Ok()); }, "OK status");
#endif
  Result<int> bad(Status::NotFound("x"));
  EXPECT_EQ(bad.status().error(), ENOENT);
}

TEST(Status, MessagesAreAlwaysOneLine) {
  Status s(EINVAL, "bad name 'a\nb\x01' here");
  EXPECT_EQ(s.message(), "bad name 'a\\x0ab\\x01' here");
  EXPECT_EQ(Status(EIO, "plain").message(), "plain");
}

}  // namespace tierfs

namespace tierfs {

TEST(HeapTrimmer, ReturnsFreedMemoryInTheMiddleOfTheHeap) {
  if (MallocInUse() == 0) GTEST_SKIP() << "malloc is not glibc's (sanitizer build)";
  // 48 MiB in 16 KiB chunks, touched; then every other chunk freed: 24 MiB free in holes
  // that a plain free() never returns (no chunk at the top of the heap is free).
  std::vector<void*> chunks(3072);
  for (void*& c : chunks) {
    c = std::malloc(16 << 10);
    std::memset(c, 1, 16 << 10);
  }
  for (size_t i = 0; i < chunks.size(); i += 2) std::free(chunks[i]);
  const uint64_t before = ReadResidentMemory().anon;
  uint64_t after = before;
  {
    HeapTrimmer trimmer(8 << 20);
    EXPECT_TRUE(trimmer.TrimOnce());
    EXPECT_EQ(trimmer.trims(), 1u);
    after = ReadResidentMemory().anon;
  }
  EXPECT_LE(after + (16 << 20), before)
      << "anon RSS " << (before >> 20) << " -> " << (after >> 20) << " MiB";
  for (size_t i = 1; i < chunks.size(); i += 2) std::free(chunks[i]);
}

TEST(HeapTrimmer, LeavesAHeapWithoutHolesAlone) {
  if (MallocInUse() == 0) GTEST_SKIP() << "malloc is not glibc's (sanitizer build)";
  HeapTrimmer trimmer(64 << 20);
  EXPECT_FALSE(trimmer.TrimOnce());
  EXPECT_FALSE(trimmer.TrimOnce());
  EXPECT_EQ(trimmer.trims(), 0u);
}

TEST(HeapTrimmer, MemoryHeldIdleForReuseCountsAgainstTheSlack) {
  if (MallocInUse() == 0) GTEST_SKIP() << "malloc is not glibc's (sanitizer build)";
  // 80 MiB in use; a slack 32 MiB above what the process holds outside malloc. Nothing to
  // trim, unless 64 MiB of what is in use is only held idle for reuse (a pool's buffers).
  std::vector<char> in_use(80 << 20, 1);
  const uint64_t anon = ReadResidentMemory().anon, handed_out = MallocInUse();
  const uint64_t slack = (anon > handed_out ? anon - handed_out : 0) + (32 << 20);
  EXPECT_FALSE(HeapTrimmer(slack).TrimOnce());
  EXPECT_TRUE(HeapTrimmer(slack, [] { return uint64_t{64} << 20; }).TrimOnce());
}

TEST(HeapTrimmer, StartedItChecksOnItsOwnUntilDestroyed) {
  if (MallocInUse() == 0) GTEST_SKIP() << "malloc is not glibc's (sanitizer build)";
  // A slack of 0 with everything in use counted idle: every check trims.
  HeapTrimmer trimmer(0, [] { return ~uint64_t{0}; });
  trimmer.Start(std::chrono::milliseconds(1));
  for (int i = 0; i < 2000 && trimmer.trims() < 3; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_GE(trimmer.trims(), 3u);
}

// Whole reads and writes (common/fd.h). A socket pair moves at most its buffer per call,
// so a large transfer is made of short writes and reads: the loops must finish them.
TEST(Fd, WholeTransfersOverShortCallsAndTheirErrors) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  UniqueFd a(sv[0]), b(sv[1]);
  const int small = 4096;
  ASSERT_EQ(::setsockopt(a.get(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
  std::string sent(1 << 20, '\0');
  for (size_t i = 0; i < sent.size(); ++i) sent[i] = static_cast<char>(i * 7 + i / 4096);
  std::string got(sent.size(), '\0');
  std::thread reader([&] { EXPECT_TRUE(ReadExact(b.get(), got.data(), got.size(), "pair").ok()); });
  EXPECT_TRUE(WriteFull(a.get(), sent.data(), sent.size(), "pair").ok());
  reader.join();
  EXPECT_EQ(got, sent);
  // The reader asks for more than comes: the end of the stream is "truncated", never a
  // short success.
  a.reset();
  char c;
  Status s = ReadExact(b.get(), &c, 1, "pair");
  EXPECT_EQ(s.error(), EIO);
  EXPECT_NE(s.message().find("truncated"), std::string::npos) << s.message();

  char path[] = "/tmp/tierfs-fd-XXXXXX";
  UniqueFd f(::mkstemp(path));
  ASSERT_TRUE(f.valid());
  ::unlink(path);
  ASSERT_TRUE(PwriteFull(f.get(), sent.data(), 1000, 5000, path).ok());
  auto n = PreadFull(f.get(), got.data(), 10000, 4000, path);  // past the end: fewer
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 2000U);
  EXPECT_EQ(got.substr(1000, 1000), sent.substr(0, 1000));
  EXPECT_EQ(PreadExact(f.get(), got.data(), 10000, 4000, path).error(), EIO);
  // A failing call reports its own errno.
  UniqueFd ro(::open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC));
  Status w = WriteFull(ro.get(), "x", 1, "cmdline");
  EXPECT_EQ(w.error(), EBADF);
  EXPECT_NE(w.message().find("cmdline"), std::string::npos);
  // UniqueFd closes once: the moved-from one no longer owns it.
  const int raw = f.get();
  UniqueFd moved(std::move(f));
  EXPECT_FALSE(f.valid());
  EXPECT_EQ(moved.get(), raw);
  moved.reset();
  EXPECT_EQ(::fcntl(raw, F_GETFD), -1);
}

}  // namespace tierfs
