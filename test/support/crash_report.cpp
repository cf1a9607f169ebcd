#include "support/crash_report.hpp"

#include <execinfo.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/test/framework.hpp>
#include <boost/test/tree/observer.hpp>
#include <boost/test/tree/test_unit.hpp>
#include <cstring>
#include <string>

namespace fcgi::test {
namespace {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool sanitized = true;
#else
constexpr bool sanitized = false;
#endif

// The running test case's full name, NUL-terminated; written by the observer between tests and
// read by the handler, which may only use what is already in memory.
char current_test[512] = "(no test started)";
std::atomic<bool> reporting{false};

struct name_observer : boost::unit_test::test_observer {
    void test_unit_start(const boost::unit_test::test_unit& tu) override {
        if (tu.p_type != boost::unit_test::TUT_CASE)
            return;
        std::string name = tu.full_name();
        std::size_t n = std::min(name.size(), sizeof current_test - 1);
        std::memcpy(current_test, name.data(), n);
        current_test[n] = '\0';
    }
};
name_observer observer;

void say(const char* s) {
    std::size_t left = std::strlen(s);
    while (left > 0) {
        ssize_t n = ::write(STDERR_FILENO, s, left);
        if (n <= 0)
            return;
        s += n;
        left -= static_cast<std::size_t>(n);
    }
}

// Decimal without allocation or locale; every number reported is non-negative.
void say_number(unsigned long u) {
    char buf[24];
    char* p = buf + sizeof buf;
    *--p = '\0';
    do {
        *--p = static_cast<char>('0' + u % 10);
        u /= 10;
    } while (u != 0);
    say(p);
}

void on_fatal_signal(int sig, siginfo_t* info, void*) {
    // A second fault while reporting (or on another thread at once) just dies.
    if (!reporting.exchange(true)) {
        say("\n*** fatal signal ");
        say_number(static_cast<unsigned long>(sig));
        say(" (");
        say(sigabbrev_np(sig) ? sigabbrev_np(sig) : "?");
        say(") on thread ");
        say_number(static_cast<unsigned long>(::syscall(SYS_gettid)));
        say(", process ");
        say_number(static_cast<unsigned long>(::getpid()));
        if (info && info->si_code <= 0) {
            // kill(), tgkill() or sigqueue(): a stray signal names its sender.
            say(", sent by process ");
            say_number(static_cast<unsigned long>(info->si_pid));
            say(" (uid ");
            say_number(static_cast<unsigned long>(info->si_uid));
            say(")");
        }
        say(", during test \"");
        say(current_test);
        say("\"; backtrace:\n");
        void* frames[64];
        int n = ::backtrace(frames, 64);
        ::backtrace_symbols_fd(frames, n, STDERR_FILENO);
    }
    // Die of the same signal, so ctest and a core dump see what happened.
    ::signal(sig, SIG_DFL);
    ::raise(sig);
}

// The main thread's stack for the handler, so a stack overflow there is reported too.
alignas(16) char alternate_stack[64 * 1024];

}  // namespace

crash_report::crash_report() {
    boost::unit_test::framework::register_observer(observer);
    if (sanitized)
        return;
    // backtrace() loads libgcc on first use, which allocates: do that now, not in a handler.
    void* warm[1];
    (void)::backtrace(warm, 1);
    stack_t ss{};
    ss.ss_sp = alternate_stack;
    ss.ss_size = sizeof alternate_stack;
    ::sigaltstack(&ss, nullptr);
    struct sigaction sa {};
    sa.sa_sigaction = on_fatal_signal;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    // Faults, then what only another process sends: a test process is never meant to get
    // SIGTERM or SIGHUP, so one that does says who sent it.
    for (int sig : {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGPIPE, SIGTERM, SIGINT, SIGHUP,
                    SIGQUIT, SIGUSR1, SIGUSR2, SIGXCPU, SIGXFSZ, SIGSYS})
        ::sigaction(sig, &sa, nullptr);
}

// The handlers stay: a fault during static destruction deserves the report as much.
crash_report::~crash_report() {
    boost::unit_test::framework::deregister_observer(observer);
}

}  // namespace fcgi::test
