// nnfast's SIMT emulator: the scheduler (fibers, barriers, warp collectives)
// and the emulated CUDA runtime. Semantics and limits: README.md in this folder.
#include "emu.h"

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#if defined(__SANITIZE_ADDRESS__)
#define NNFAST_EMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define NNFAST_EMU_ASAN 1
#endif
#endif
#ifndef NNFAST_EMU_ASAN
#define NNFAST_EMU_ASAN 0
#endif

#if NNFAST_EMU_ASAN
#if __has_include(<sanitizer/common_interface_defs.h>)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#else
extern "C" void __sanitizer_start_switch_fiber(void** fake_stack_save, const void* bottom, std::size_t size);
extern "C" void __sanitizer_finish_switch_fiber(void* fake_stack_save, const void** bottom_old,
                                                std::size_t* size_old);
extern "C" void __asan_unpoison_memory_region(void const volatile* addr, std::size_t size);
#endif
#endif

#if defined(__x86_64__) && !defined(NNFAST_EMU_UCONTEXT)
#define NNFAST_EMU_ASM_SWITCH 1
#else
#define NNFAST_EMU_ASM_SWITCH 0
#include <ucontext.h>
#endif

namespace nnfast_emu {
namespace {

struct Fiber;
}  // namespace
}  // namespace nnfast_emu

extern "C" __attribute__((visibility("hidden"), used, noreturn)) void nnfast_emu_fiber_main(nnfast_emu::Fiber* f);

#if NNFAST_EMU_ASM_SWITCH
// void nnfast_emu_switch(void** save_sp, void* load_sp): saves the callee-saved
// registers on the current stack, stores the stack pointer in *save_sp, and
// resumes the context whose stack pointer is load_sp. MXCSR and the x87 control
// word are not switched: kernels do not change the rounding mode, and ldmxcsr
// would double the cost of a switch.
// A new fiber's stack is laid out so that the final `ret` enters the trampoline
// with the Fiber* in r12.
extern "C" void nnfast_emu_switch(void** save_sp, void* load_sp);
extern "C" void nnfast_emu_trampoline();
asm(R"(
  .text
  .p2align 4
  .globl nnfast_emu_switch
  .hidden nnfast_emu_switch
  .type nnfast_emu_switch,@function
nnfast_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size nnfast_emu_switch,.-nnfast_emu_switch

  .p2align 4
  .globl nnfast_emu_trampoline
  .hidden nnfast_emu_trampoline
  .type nnfast_emu_trampoline,@function
nnfast_emu_trampoline:
  .cfi_startproc
  .cfi_undefined rip
  movq %r12, %rdi
  call nnfast_emu_fiber_main
  ud2
  .cfi_endproc
  .size nnfast_emu_trampoline,.-nnfast_emu_trampoline
)");
#endif

namespace nnfast_emu {
namespace {

// ------------------------------------------------------------------ settings
std::uint64_t env_u64(const char* name, std::uint64_t dflt) {
  const char* s = std::getenv(name);
  if (!s || !*s) return dflt;
  return std::strtoull(s, nullptr, 0);
}
std::atomic<std::uint64_t> g_seed{env_u64("NNFAST_EMU_SEED", 0x6e6e66617374ull)};  // "nnfast"
std::atomic<int> g_threads{static_cast<int>(env_u64("NNFAST_EMU_THREADS", 0))};
const bool g_strict_exit = env_u64("NNFAST_EMU_STRICT_EXIT", 0) != 0;
const std::size_t g_stack_bytes = static_cast<std::size_t>(env_u64("NNFAST_EMU_STACK_KB", 256)) * 1024;

std::uint64_t splitmix(std::uint64_t& s) {
  std::uint64_t z = (s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// ------------------------------------------------------------------ fibers
enum class St : std::uint8_t { Ready, Barrier, Warp, Done };

struct Context {
#if NNFAST_EMU_ASM_SWITCH
  void* sp = nullptr;
#else
  ucontext_t uc;
#endif
};

struct Fiber {
  Context ctx;
  char* stack_lo = nullptr;
  std::size_t stack_size = 0;
  uint3 tid{0, 0, 0};
  unsigned lin = 0;
  St st = St::Ready;
  const char* file = nullptr;  // where it waits
  int line = 0;
  int pred = 0, result_i = 0;  // barrier reductions
  std::uint64_t val = 0, result = 0;
  int param = 0;
  void* fake_stack = nullptr;  // ASan's fake-stack handle while switched out
};

bool same_site(const Fiber& a, const Fiber& b) {
  return a.line == b.line && (a.file == b.file || std::strcmp(a.file, b.file) == 0);
}

struct Group {  // lanes of one warp meeting in one collective: keyed by (op, mask, width)
  int op;
  unsigned mask;
  int width;
  unsigned arrived;
  const char* file;
  int line;
};
struct Warp {
  unsigned exist = 0, exited = 0;
  std::vector<Group> groups;
};

struct Launch {
  detail::LaunchSite site;
  dim3 grid, block;
  std::size_t smem;
  detail::InvokeFn invoke;
  const void* closure;
};

const char* op_name(int op) {
  static const char* names[] = {"__shfl_sync",   "__shfl_up_sync", "__shfl_down_sync", "__shfl_xor_sync",
                                "__ballot_sync", "__any_sync",     "__all_sync",       "__syncwarp"};
  return names[op];
}

std::string fmt(const char* f, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, f);
  std::vsnprintf(buf, sizeof buf, f, ap);
  va_end(ap);
  return buf;
}
std::string dim_str(uint3 d) { return fmt("(%u,%u,%u)", d.x, d.y, d.z); }
std::string lanes_str(unsigned m) {  // "3,7-9"
  std::string s;
  for (int i = 0; i < 32;) {
    if (!(m >> i & 1u)) { ++i; continue; }
    int j = i;
    while (j + 1 < 32 && (m >> (j + 1) & 1u)) ++j;
    if (!s.empty()) s += ",";
    s += (i == j) ? fmt("%d", i) : fmt("%d-%d", i, j);
    i = j + 1;
  }
  return s;
}

std::mutex g_fatal_mutex;

struct Runner {
  const Launch* L = nullptr;
  std::vector<Fiber> fibers;
  std::vector<Warp> warps;
  std::vector<int> ready, cur;
  std::vector<char*> stacks;  // mmap'd, guard page below each, reused
  std::size_t page = 4096;
  int current = -1;
  int live = 0;
  int bar_live = 0;  // live threads when the last barrier released
  Context sched;
  const void* sched_bottom = nullptr;
  std::size_t sched_size = 0;
  void* smem = nullptr;
  std::size_t smem_size = 0;
  std::uint64_t rng = 0;

  void* altstack = nullptr;

  Runner() {
    page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
#if !NNFAST_EMU_ASAN
    // The fault handler for a fiber's guard page needs a stack of its own.
    stack_t old;
    if (sigaltstack(nullptr, &old) == 0 && (old.ss_flags & SS_DISABLE)) {
      const std::size_t n = 64 * 1024;
      altstack = mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (altstack != MAP_FAILED) {
        stack_t ss{};
        ss.ss_sp = altstack;
        ss.ss_size = n;
        sigaltstack(&ss, nullptr);
      } else {
        altstack = nullptr;
      }
    }
#endif
  }
  ~Runner() {
    if (altstack) {
      stack_t ss{};
      ss.ss_flags = SS_DISABLE;
      sigaltstack(&ss, nullptr);
      munmap(altstack, 64 * 1024);
    }
    for (char* s : stacks) munmap(s, g_stack_bytes + page);
    std::free(smem);
  }

  [[noreturn]] void fatal(const std::string& what, int fiber = -1) {
    std::lock_guard<std::mutex> lock(g_fatal_mutex);
    if (fiber < 0) fiber = current;
    std::string where;
    if (L) {
      where = fmt("kernel '%s' (launched at %s:%d), grid %s, block %s: block %s", L->site.kernel, L->site.file,
                  L->site.line, dim_str(L->grid).c_str(), dim_str(L->block).c_str(), dim_str(blockIdx).c_str());
      if (fiber >= 0) where += ", thread " + dim_str(fibers[fiber].tid);
    }
    std::fprintf(stderr, "nnfast CUDA emulator: error in %s\n  %s\n", where.c_str(), what.c_str());
    std::fflush(stderr);
    std::abort();
  }

  // A thread's linear index -> threadIdx (x fastest, as CUDA).
  uint3 tid_of(unsigned t) const {
    return uint3{t % L->block.x, (t / L->block.x) % L->block.y, t / (L->block.x * L->block.y)};
  }

  void ensure_stacks(int n) {
    while (static_cast<int>(stacks.size()) < n) {
      void* p = mmap(nullptr, g_stack_bytes + page, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
      if (p == MAP_FAILED) fatal("cannot map a fiber stack");
      mprotect(p, page, PROT_NONE);  // guard page: a stack overflow faults instead of corrupting
      stacks.push_back(static_cast<char*>(p));
    }
  }

  void make_context(Fiber& f) {
#if NNFAST_EMU_ASAN
    __asan_unpoison_memory_region(f.stack_lo, f.stack_size);  // frames left by the fiber that used it last
#endif
#if NNFAST_EMU_ASM_SWITCH
    // Stack tops staggered by 64-byte steps: tops at the same offset in every
    // 256 KB mapping would all fall into the same L1 cache set.
    char* top_c = f.stack_lo + f.stack_size - (f.lin % 61u) * 64u;
    void** top = reinterpret_cast<void**>(top_c);
    void** sp = top - 7;
    sp[0] = sp[1] = sp[2] = nullptr;               // r15 r14 r13
    sp[3] = &f;                                    // r12 -> trampoline's argument
    sp[4] = sp[5] = nullptr;                       // rbx rbp (0 ends frame-pointer unwinding)
    sp[6] = reinterpret_cast<void*>(&nnfast_emu_trampoline);
    f.ctx.sp = sp;
#else
    getcontext(&f.ctx.uc);
    f.ctx.uc.uc_stack.ss_sp = f.stack_lo;
    f.ctx.uc.uc_stack.ss_size = f.stack_size;
    f.ctx.uc.uc_link = nullptr;
    const std::uintptr_t p = reinterpret_cast<std::uintptr_t>(&f);
    makecontext(&f.ctx.uc, reinterpret_cast<void (*)()>(&ucontext_entry), 2, static_cast<unsigned>(p >> 32),
                static_cast<unsigned>(p & 0xffffffffu));
#endif
  }
#if !NNFAST_EMU_ASM_SWITCH
  static void ucontext_entry(unsigned hi, unsigned lo) {
    nnfast_emu_fiber_main(reinterpret_cast<Fiber*>((static_cast<std::uintptr_t>(hi) << 32) | lo));
  }
#endif

  static void raw_switch(Context* from, Context* to) {
#if NNFAST_EMU_ASM_SWITCH
    nnfast_emu_switch(&from->sp, to->sp);
#else
    swapcontext(&from->uc, &to->uc);
#endif
  }

  // scheduler -> fiber i, until it blocks or exits
  void resume(int i) {
    current = i;
    Fiber& f = fibers[i];
    threadIdx = f.tid;
#if NNFAST_EMU_ASAN
    void* fake = nullptr;
    __sanitizer_start_switch_fiber(&fake, f.stack_lo, f.stack_size);
#endif
    raw_switch(&sched, &f.ctx);
#if NNFAST_EMU_ASAN
    __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
    current = -1;
  }

  // fiber -> scheduler (the fiber is blocked; it resumes here)
  void yield() {
    Fiber& f = fibers[current];
#if NNFAST_EMU_ASAN
    __sanitizer_start_switch_fiber(&f.fake_stack, sched_bottom, sched_size);
#endif
    raw_switch(&f.ctx, &sched);
#if NNFAST_EMU_ASAN
    __sanitizer_finish_switch_fiber(f.fake_stack, nullptr, nullptr);
#endif
  }

  void shuffle(std::vector<int>& v) {
    for (std::size_t i = v.size(); i > 1; --i) {
      const std::size_t j = static_cast<std::size_t>((static_cast<unsigned __int128>(splitmix(rng)) * i) >> 64);
      std::swap(v[i - 1], v[j]);
    }
  }

  void run_block(const Launch& launch, unsigned long long b) {
    L = &launch;
    const dim3 g = launch.grid, bd = launch.block;
    blockIdx = uint3{static_cast<unsigned>(b % g.x), static_cast<unsigned>((b / g.x) % g.y),
                     static_cast<unsigned>(b / (static_cast<unsigned long long>(g.x) * g.y))};
    blockDim = bd;
    gridDim = g;
    const int nt = static_cast<int>(bd.x * bd.y * bd.z);
    ensure_stacks(nt);
    fibers.resize(nt);
    const int nw = (nt + 31) / 32;
    warps.resize(nw);
    for (int w = 0; w < nw; ++w) {
      const int n = (w == nw - 1 && nt % 32) ? nt % 32 : 32;
      warps[w].exist = n == 32 ? 0xffffffffu : ((1u << n) - 1);
      warps[w].exited = 0;
      warps[w].groups.clear();
    }
    ready.clear();
    for (int t = 0; t < nt; ++t) {
      Fiber& f = fibers[t];
      f.stack_lo = stacks[t] + page;
      f.stack_size = g_stack_bytes;
      f.tid = tid_of(static_cast<unsigned>(t));
      f.lin = static_cast<unsigned>(t);
      f.st = St::Ready;
      f.fake_stack = nullptr;
      make_context(f);
      ready.push_back(t);
    }
    // Dynamic shared memory: exactly the launch's size (ASan sees overflows), poisoned
    // with 0xFF bytes (NaN floats, -1 integers) before every block.
    if (smem_size != launch.smem) {
      std::free(smem);
      smem = nullptr;
      smem_size = launch.smem;
      if (smem_size && posix_memalign(&smem, 128, smem_size) != 0) fatal("cannot allocate dynamic shared memory");
    }
    if (smem) std::memset(smem, 0xff, smem_size);
    rng = g_seed.load(std::memory_order_relaxed) ^ (0xd1b54a32d192ed03ull * (b + 1));
    splitmix(rng);
    live = nt;

    for (;;) {
      while (!ready.empty()) {
        cur.swap(ready);
        ready.clear();
        shuffle(cur);
        for (int i : cur) resume(i);
      }
      if (live == 0) break;
      quiescent();
    }
    L = nullptr;
  }

  // Every live thread is blocked: complete what can be completed, release a barrier, or stop.
  void quiescent() {
    // __syncwarp does not wait for exited lanes.
    bool progressed = false;
    for (std::size_t w = 0; w < warps.size(); ++w) {
      auto& gs = warps[w].groups;
      for (std::size_t k = 0; k < gs.size();) {
        const unsigned need = gs[k].mask & ~warps[w].exited;
        if (gs[k].op == detail::kSyncWarp && (gs[k].arrived & need) == need) {
          complete(static_cast<int>(w), k, -1);
          progressed = true;
        } else {
          ++k;
        }
      }
    }
    if (progressed) return;
    for (std::size_t w = 0; w < warps.size(); ++w) {
      if (warps[w].groups.empty()) continue;
      const Group& gr = warps[w].groups[0];
      const unsigned missing = gr.mask & ~gr.arrived;
      int first_in = -1;
      std::string why;
      for (int l = 0; l < 32; ++l) {
        const int t = static_cast<int>(w) * 32 + l;
        if (gr.arrived >> l & 1u) {
          if (first_in < 0) first_in = t;
          continue;
        }
        if (!(missing >> l & 1u)) continue;
        const Fiber& f = fibers[t];
        std::string s;
        if (f.st == St::Done) s = "exited";
        else if (f.st == St::Barrier) s = fmt("waits at __syncthreads %s:%d", f.file, f.line);
        else s = fmt("waits in another warp collective at %s:%d", f.file, f.line);
        why += fmt("\n    lane %d (thread %s) %s", l, dim_str(f.tid).c_str(), s.c_str());
      }
      fatal(fmt("%s(mask=0x%08x, width=%d) at %s:%d can never complete: lanes %s arrived, lanes %s named in the "
                "mask did not:%s",
                op_name(gr.op), gr.mask, gr.width, gr.file, gr.line, lanes_str(gr.arrived).c_str(),
                lanes_str(missing).c_str(), why.c_str()),
            first_in);
    }
    // All live threads wait at barriers: they must all wait at the same one.
    int first = -1, count = 0;
    bool same = true;
    for (int t = 0; t < static_cast<int>(fibers.size()); ++t) {
      const Fiber& f = fibers[t];
      if (f.st == St::Done) continue;
      if (first < 0) first = t;
      else if (!same_site(f, fibers[first])) same = false;
      count += f.pred;
    }
    if (!same) {
      std::string sites;
      std::vector<int> seen;
      for (int t = 0; t < static_cast<int>(fibers.size()); ++t) {
        const Fiber& f = fibers[t];
        if (f.st == St::Done) continue;
        bool dup = false;
        for (int s : seen) dup |= same_site(fibers[s], f);
        if (dup) continue;
        seen.push_back(t);
        int n = 0;
        for (const Fiber& o : fibers) n += o.st != St::Done && same_site(o, f);
        sites += fmt("\n    %d threads wait at __syncthreads %s:%d (e.g. thread %s)", n, f.file, f.line,
                     dim_str(f.tid).c_str());
      }
      const int exited = static_cast<int>(fibers.size()) - live;
      if (exited) sites += fmt("\n    %d threads exited", exited);
      fatal("divergent __syncthreads: the threads of the block wait at different barriers" + sites, first);
    }
    if (g_strict_exit && live != static_cast<int>(fibers.size())) {
      int ex = 0;
      while (fibers[ex].st != St::Done) ++ex;
      fatal(fmt("__syncthreads at %s:%d after %d threads exited (e.g. thread %s); NNFAST_EMU_STRICT_EXIT=1 rejects "
                "this",
                fibers[first].file, fibers[first].line, static_cast<int>(fibers.size()) - live,
                dim_str(fibers[ex].tid).c_str()),
            first);
    }
    bar_live = live;
    for (int t = 0; t < static_cast<int>(fibers.size()); ++t) {
      Fiber& f = fibers[t];
      if (f.st == St::Done) continue;
      f.result_i = count;
      f.st = St::Ready;
      ready.push_back(t);
    }
  }

  // All lanes of group k of warp w are there: compute every lane's result.
  void complete(int w, std::size_t k, int caller) {
    const Group gr = warps[w].groups[k];
    warps[w].groups[k] = warps[w].groups.back();
    warps[w].groups.pop_back();
    const int base = w * 32;
    unsigned ballot = 0;
    for (int l = 0; l < 32; ++l)
      if ((gr.arrived >> l & 1u) && fibers[base + l].val) ballot |= 1u << l;
    const int wd = gr.width;
    for (int l = 0; l < 32; ++l) {
      if (!(gr.arrived >> l & 1u)) continue;
      Fiber& f = fibers[base + l];
      std::uint64_t r = 0;
      int src = l;
      const int seg = l & ~(wd - 1), pos = l & (wd - 1);
      switch (gr.op) {
        case detail::kShflIdx: src = seg + (f.param & (wd - 1)); break;
        case detail::kShflUp: src = pos - f.param < 0 ? l : l - f.param; break;
        case detail::kShflDown: src = pos + f.param >= wd ? l : l + f.param; break;
        case detail::kShflXor:
          src = l ^ f.param;
          if (src < 0 || src >= seg + wd) src = l;
          break;
        case detail::kBallot: r = ballot; break;
        case detail::kAny: r = ballot != 0; break;
        case detail::kAll: r = ballot == gr.arrived; break;
        default: break;
      }
      if (gr.op <= detail::kShflXor)  // reading a lane outside the mask is undefined in CUDA: poison
        r = (gr.arrived >> src & 1u) ? fibers[base + src].val : ~0ull;
      f.result = r;
      if (base + l != caller) {
        f.st = St::Ready;
        ready.push_back(base + l);
      }
    }
  }

  std::uint64_t warp_op(int op, unsigned mask, int width, std::uint64_t value, int param, const char* file,
                        int line) {
    if (current < 0) {
      std::fprintf(stderr, "nnfast CUDA emulator: %s called outside a kernel at %s:%d\n", op_name(op), file, line);
      std::abort();
    }
    Fiber& f = fibers[current];
    const int lane = static_cast<int>(f.lin & 31u), w = static_cast<int>(f.lin >> 5);
    Warp& wp = warps[w];
    if (width < 1 || width > 32 || (width & (width - 1)))
      fatal(fmt("%s at %s:%d: width %d is not a power of two in [1, 32]", op_name(op), file, line, width));
    if (!(mask >> lane & 1u))
      fatal(fmt("%s(mask=0x%08x) at %s:%d: the calling lane %d is not in the mask", op_name(op), mask, file, line,
                lane));
    if (mask & ~wp.exist)
      fatal(fmt("%s(mask=0x%08x) at %s:%d: the mask names lanes %s, which this warp does not have (block of %d "
                "threads)",
                op_name(op), mask, file, line, lanes_str(mask & ~wp.exist).c_str(), static_cast<int>(fibers.size())));
    if (op != detail::kSyncWarp && (mask & wp.exited))
      fatal(fmt("%s(mask=0x%08x) at %s:%d: the mask names lanes %s, which have exited", op_name(op), mask, file,
                line, lanes_str(mask & wp.exited).c_str()));
    std::size_t k = 0;
    while (k < wp.groups.size() &&
           !(wp.groups[k].op == op && wp.groups[k].mask == mask && wp.groups[k].width == width))
      ++k;
    if (k == wp.groups.size()) wp.groups.push_back(Group{op, mask, width, 0u, file, line});
    wp.groups[k].arrived |= 1u << lane;
    f.val = value;
    f.param = param;
    const unsigned need = op == detail::kSyncWarp ? mask & ~wp.exited : mask;
    if ((wp.groups[k].arrived & need) == need) {
      complete(w, k, current);
      return f.result;
    }
    f.st = St::Warp;
    f.file = file;
    f.line = line;
    yield();
    return fibers[current].result;
  }

  int barrier(int op, int pred, const char* file, int line) {
    if (current < 0) {
      std::fprintf(stderr, "nnfast CUDA emulator: __syncthreads called outside a kernel at %s:%d\n", file, line);
      std::abort();
    }
    Fiber& f = fibers[current];
    f.st = St::Barrier;
    f.file = file;
    f.line = line;
    f.pred = pred;
    yield();
    Fiber& g = fibers[current];
    const int n = g.result_i, alive = bar_live;
    switch (op) {
      case detail::kBarCount: return n;
      case detail::kBarAnd: return n == alive;
      case detail::kBarOr: return n > 0;
      default: return 0;
    }
  }
};

thread_local Runner t_runner;
thread_local Runner* t_active = nullptr;  // the runner executing a block on this thread (for the fault handler)

// A fault in the guard page of the running fiber's stack is a stack overflow: say so.
// (Kernels are compiled with -fstack-clash-protection, so a large frame probes its
// pages in order and hits the guard instead of skipping over it.)
struct sigaction g_old_segv, g_old_bus;
void on_fault(int sig, siginfo_t* si, void* uc) {
  Runner* R = t_active;
  if (R && R->current >= 0 && R->L) {
    const char* a = static_cast<const char*>(si->si_addr);
    const char* g = R->stacks[R->current];
    if (a >= g && a < g + R->page) {
      const Fiber& f = R->fibers[R->current];
      char buf[1024];
      const int n = std::snprintf(
          buf, sizeof buf,
          "nnfast CUDA emulator: error in kernel '%s' (launched at %s:%d): block (%u,%u,%u), thread (%u,%u,%u)\n"
          "  fiber stack overflow: the thread needs more than the %zu KB stack (set NNFAST_EMU_STACK_KB)\n",
          R->L->site.kernel, R->L->site.file, R->L->site.line, blockIdx.x, blockIdx.y, blockIdx.z, f.tid.x, f.tid.y,
          f.tid.z, g_stack_bytes / 1024);
      if (write(2, buf, static_cast<std::size_t>(n)) < 0) {}
      std::abort();
    }
  }
  const struct sigaction& old = sig == SIGSEGV ? g_old_segv : g_old_bus;
  if ((old.sa_flags & SA_SIGINFO) && old.sa_sigaction) return old.sa_sigaction(sig, si, uc);
  if (old.sa_handler != SIG_DFL && old.sa_handler != SIG_IGN) return old.sa_handler(sig);
  signal(sig, SIG_DFL);  // returning re-executes the access: default action
}
void install_fault_handler() {
#if !NNFAST_EMU_ASAN  // ASan reports stack overflows itself
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa {};
    sa.sa_sigaction = &on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &g_old_segv);
    sigaction(SIGBUS, &sa, &g_old_bus);
  });
#endif
}

}  // namespace
}  // namespace nnfast_emu

extern "C" void nnfast_emu_fiber_main(nnfast_emu::Fiber* f) {
  using nnfast_emu::t_runner;
  nnfast_emu::Runner& R = t_runner;
#if NNFAST_EMU_ASAN
  __sanitizer_finish_switch_fiber(nullptr, &R.sched_bottom, &R.sched_size);
#endif
  R.L->invoke(R.L->closure);
  f->st = nnfast_emu::St::Done;
  --R.live;
  R.warps[f->lin >> 5].exited |= 1u << (f->lin & 31u);
#if NNFAST_EMU_ASAN
  __sanitizer_start_switch_fiber(nullptr, R.sched_bottom, R.sched_size);  // this fiber's fake stack dies
#endif
  nnfast_emu::Runner::raw_switch(&f->ctx, &R.sched);
  std::abort();  // never resumed
}

namespace nnfast_emu {

void set_seed(std::uint64_t s) { g_seed.store(s); }
std::uint64_t seed() { return g_seed.load(); }
void set_threads(int n) { g_threads.store(n); }

namespace detail {

std::uint64_t warp_op(int op, unsigned mask, int width, std::uint64_t value, int param, const char* file, int line) {
  return t_runner.warp_op(op, mask, width, value, param, file, line);
}
int barrier(int op, int pred, const char* file, int line) { return t_runner.barrier(op, pred, file, line); }
void* dynamic_shared() { return t_runner.smem; }

}  // namespace detail

namespace {
thread_local cudaError_t t_last_error = cudaSuccess;
cudaError_t set_error(cudaError_t e) {
  if (e != cudaSuccess) t_last_error = e;
  return e;
}
int threads_for(unsigned long long blocks) {
  int n = g_threads.load();
#ifdef _OPENMP
  if (n <= 0) n = omp_get_max_threads();
#endif
  if (n <= 0) n = 1;
  return static_cast<int>(blocks < static_cast<unsigned long long>(n) ? blocks : n);
}
}  // namespace

namespace detail {
void launch(const LaunchSite& site, dim3 grid, dim3 block, std::size_t smem, cudaStream_t, InvokeFn invoke,
            const void* closure) {
  const unsigned long long nt = 1ull * block.x * block.y * block.z;
  if (!block.x || !block.y || !block.z || nt > 1024 || block.z > 64 || !grid.x || !grid.y || !grid.z ||
      grid.x > 0x7fffffffu || grid.y > 65535 || grid.z > 65535 || smem > 227u * 1024) {
    set_error(cudaErrorInvalidConfiguration);
    return;
  }
  install_fault_handler();
  Launch L{site, grid, block, smem, invoke, closure};
  const unsigned long long nb = 1ull * grid.x * grid.y * grid.z;
  const int nth = threads_for(nb);
  if (nth <= 1) {
    t_active = &t_runner;
    for (unsigned long long b = 0; b < nb; ++b) t_runner.run_block(L, b);
    t_active = nullptr;
    return;
  }
#pragma omp parallel for schedule(dynamic, 1) num_threads(nth)
  for (long long b = 0; b < static_cast<long long>(nb); ++b) {
    t_active = &t_runner;
    t_runner.run_block(L, static_cast<unsigned long long>(b));
    t_active = nullptr;
  }
}
}  // namespace detail
}  // namespace nnfast_emu

// ------------------------------------------------------------------ runtime API
struct CUstream_st {
  unsigned flags;
};
struct CUevent_st {
  double ms = 0;
  bool recorded = false;
};

using nnfast_emu::set_error;

namespace {
double now_ms() {
  using namespace std::chrono;
  return duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}

// Streams and events are plain heap objects. As in CUDA, a null out-pointer is
// cudaErrorInvalidValue and a null handle cudaErrorInvalidResourceHandle.
template <typename H, typename... Init>
cudaError_t new_handle(H** out, Init... init) {
  if (!out) return set_error(cudaErrorInvalidValue);
  *out = new H{init...};
  return cudaSuccess;
}
template <typename H>
cudaError_t delete_handle(H* h) {
  if (!h) return set_error(cudaErrorInvalidResourceHandle);
  delete h;
  return cudaSuccess;
}
}  // namespace

cudaError_t cudaMalloc(void** ptr, std::size_t bytes) {
  if (!ptr) return set_error(cudaErrorInvalidValue);
  *ptr = nullptr;
  if (bytes == 0) return cudaSuccess;
  if (posix_memalign(ptr, 256, bytes) != 0) {
    *ptr = nullptr;
    return set_error(cudaErrorMemoryAllocation);
  }
  return cudaSuccess;
}
cudaError_t cudaMallocHost(void** ptr, std::size_t bytes) { return cudaMalloc(ptr, bytes); }
cudaError_t cudaFree(void* ptr) {
  std::free(ptr);
  return cudaSuccess;
}
cudaError_t cudaFreeHost(void* ptr) { return cudaFree(ptr); }
cudaError_t cudaMemcpy(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind) {
  if (kind < cudaMemcpyHostToHost || kind > cudaMemcpyDefault) return set_error(cudaErrorInvalidMemcpyDirection);
  if (bytes && (!dst || !src)) return set_error(cudaErrorInvalidValue);
  if (bytes) std::memmove(dst, src, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind, cudaStream_t) {
  return cudaMemcpy(dst, src, bytes, kind);
}
cudaError_t cudaMemset(void* dst, int value, std::size_t bytes) {
  if (bytes && !dst) return set_error(cudaErrorInvalidValue);
  if (bytes) std::memset(dst, value, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void* dst, int value, std::size_t bytes, cudaStream_t) {
  return cudaMemset(dst, value, bytes);
}
// Streams run synchronously: work is done when the call that enqueues it returns.
cudaError_t cudaStreamCreate(cudaStream_t* s) { return cudaStreamCreateWithFlags(s, 0); }
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned int flags) { return new_handle(s, flags); }
cudaError_t cudaStreamDestroy(cudaStream_t s) { return delete_handle(s); }
cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
cudaError_t cudaStreamQuery(cudaStream_t) { return cudaSuccess; }
cudaError_t cudaStreamWaitEvent(cudaStream_t, cudaEvent_t e, unsigned int) {
  return e ? cudaSuccess : set_error(cudaErrorInvalidResourceHandle);
}
cudaError_t cudaEventCreate(cudaEvent_t* e) { return cudaEventCreateWithFlags(e, 0); }
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* e, unsigned int) { return new_handle(e); }
cudaError_t cudaEventDestroy(cudaEvent_t e) { return delete_handle(e); }
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t) {
  if (!e) return set_error(cudaErrorInvalidResourceHandle);
  e->ms = now_ms();
  e->recorded = true;
  return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t e) { return e ? cudaSuccess : set_error(cudaErrorInvalidResourceHandle); }
cudaError_t cudaEventQuery(cudaEvent_t e) { return e ? cudaSuccess : set_error(cudaErrorInvalidResourceHandle); }
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t a, cudaEvent_t b) {
  if (!ms || !a || !b) return set_error(cudaErrorInvalidValue);
  if (!a->recorded || !b->recorded) return set_error(cudaErrorInvalidResourceHandle);
  *ms = static_cast<float>(b->ms - a->ms);
  return cudaSuccess;
}
cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }
cudaError_t cudaDeviceReset() { return cudaSuccess; }
cudaError_t cudaGetDeviceCount(int* n) {
  if (!n) return set_error(cudaErrorInvalidValue);
  *n = 1;
  return cudaSuccess;
}
cudaError_t cudaGetDevice(int* d) {
  if (!d) return set_error(cudaErrorInvalidValue);
  *d = 0;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int d) { return d == 0 ? cudaSuccess : set_error(cudaErrorInvalidDevice); }
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int d) {
  if (!p) return set_error(cudaErrorInvalidValue);
  if (d != 0) return set_error(cudaErrorInvalidDevice);
  std::memset(p, 0, sizeof *p);
  std::snprintf(p->name, sizeof p->name, "nnfast CPU emulator");
  p->totalGlobalMem = std::size_t(1) << 34;
  p->sharedMemPerBlock = 48 * 1024;
  p->sharedMemPerBlockOptin = 227 * 1024;
  p->regsPerBlock = 65536;
  p->warpSize = 32;
  p->maxThreadsPerBlock = 1024;
  p->maxThreadsDim[0] = p->maxThreadsDim[1] = 1024;
  p->maxThreadsDim[2] = 64;
  p->maxGridSize[0] = 0x7fffffff;
  p->maxGridSize[1] = p->maxGridSize[2] = 65535;
  p->multiProcessorCount = nnfast_emu::threads_for(1ull << 20);
  p->major = 9;
  p->minor = 0;
  return cudaSuccess;
}
cudaError_t cudaGetLastError() {
  const cudaError_t e = nnfast_emu::t_last_error;
  nnfast_emu::t_last_error = cudaSuccess;
  return e;
}
cudaError_t cudaPeekAtLastError() { return nnfast_emu::t_last_error; }
const char* cudaGetErrorName(cudaError_t e) {
  switch (e) {
#define NNFAST_EMU_X(name, value, text) \
  case name: return #name;
    NNFAST_EMU_CUDA_ERRORS(NNFAST_EMU_X)
#undef NNFAST_EMU_X
  }
  return "cudaErrorUnknown";
}
const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
#define NNFAST_EMU_X(name, value, text) \
  case name: return text;
    NNFAST_EMU_CUDA_ERRORS(NNFAST_EMU_X)
#undef NNFAST_EMU_X
  }
  return "unknown error";
}
