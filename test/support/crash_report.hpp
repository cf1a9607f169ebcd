// A fatal signal in any thread of a test executable says which signal, which test and where.
#pragma once

namespace fcgi::test {

/// Boost.Test global fixture: installs handlers for the faults (SIGSEGV, SIGBUS, SIGILL, SIGFPE,
/// SIGABRT), SIGPIPE and the signals only another process sends (SIGTERM, SIGINT, SIGHUP, ...)
/// that print the signal, its sender if another process, the running test and a backtrace to
/// stderr, then die of the signal as before. The main thread's handler has its own stack, so a
/// stack overflow there is reported too.
///
/// Boost.Test's own handlers (catch_system_errors) only work on the thread that runs the test:
/// a fault on a responder or resolver thread long-jumped into the main thread's stack, and a
/// run died with no word of why. The tests run with --catch_system_errors=no so these handlers
/// stay in place. Under ASan or TSan nothing is installed: the sanitizer's report says more.
struct crash_report {
    crash_report();
    ~crash_report();
    crash_report(const crash_report&) = delete;
    crash_report& operator=(const crash_report&) = delete;
};

}  // namespace fcgi::test
