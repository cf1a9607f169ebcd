#include "output.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>

#include "fcgi/error.hpp"

namespace fcgi_cli {
namespace {

// Whether stderr ends at the start of a line. php-fpm sends its log text without a final
// newline, and our own "fcgi: " line must still start a line of its own.
bool stderr_at_line_start = true;

bool write_all(std::FILE* f, std::string_view bytes) {
    if (!bytes.empty() && std::fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size())
        return false;
    return std::fflush(f) == 0;
}

void replace_all(std::string& text, std::string_view from, std::string_view to) {
    for (auto at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
        text.replace(at, from.size(), to);
}

}  // namespace

bool write_stdout(std::string_view bytes) {
    return write_all(stdout, bytes);
}

void write_stderr(std::string_view bytes) {
    if (bytes.empty())
        return;
    (void)write_all(stderr, bytes);
    stderr_at_line_start = bytes.back() == '\n';
}

void end_line() {
    if (!stderr_at_line_start)
        write_stderr("\n");
}

void print_error(std::string_view message) {
    std::string line = stderr_at_line_start ? "fcgi: " : "\nfcgi: ";
    line.reserve(line.size() + message.size() + 1);
    for (char c : message)
        line.push_back(c == '\r' || c == '\n' ? ' ' : c);
    line.push_back('\n');
    write_stderr(line);
}

std::string connect_failure_text(const fcgi::endpoint& where, std::error_code ec,
                                 std::string_view limit) {
    if (ec == fcgi::error::connect_timeout)
        return "cannot connect: the connect did not complete within " + std::string(limit) +
               ": nothing accepted it (a host down, SYNs dropped, a full accept queue)";
    return "cannot connect: " + fcgi::connect_error_text(where, ec);
}

void guard_standard_descriptors() {
    for (int fd = 0; fd <= 2; ++fd) {
        if (::fcntl(fd, F_GETFD) != -1 || errno != EBADF)
            continue;
        // open() returns the lowest free number: this one, as the lower ones are open by now.
        int got = ::open("/dev/null", fd == 0 ? O_WRONLY : O_RDONLY);
        if (got != fd && got != -1)
            ::close(got);
    }
}

std::string error_text(std::error_code ec, std::string_view diagnostics) {
    std::string s = ec.message();
    if (!diagnostics.empty()) {
        s += " (";
        s += diagnostics;
        s += ")";
    }
    return s;
}

std::string describe_failure(std::string_view where, std::string_view what, std::error_code ec,
                             std::string_view diagnostics) {
    std::string s(where);
    s += ": ";
    s += what;
    s += ": ";
    s += error_text(ec, diagnostics);
    return s;
}

std::string in_flag_terms(std::string diagnostics, bool has_max_output) {
    replace_all(diagnostics, "; client_options::connection in a client", "");
    replace_all(diagnostics, "connection_options::max_stderr_size", "--max-stderr");
    // Only bench and fanout reuse connections, and both have the flag.
    replace_all(diagnostics, "client_options::max_requests_per_connection_lifetime",
                "--recycle-after");
    if (has_max_output)
        replace_all(diagnostics, "connection_options::max_stdout_size", "--max-output");
    return diagnostics;
}

std::string in_request_terms(std::string diagnostics, request_terms terms) {
    struct words {
        std::string_view library, flag, job_key;
    };
    // The longer names first: "request::script and request::query" holds the shorter ones.
    static constexpr words names[] = {
        {"request::script and request::query", "SCRIPT?QUERY", "\"script\" and \"query\""},
        {"a request::headers entry", "a --header", "a \"headers\" entry"},
        {"request::params", "--param", "\"params\""},
        {"request::query", "the QUERY of SCRIPT?QUERY", "\"query\""},
        {"request::script", "SCRIPT", "\"script\""},
        {"request::document_root", "--root", "--root"},
        {"request::method", "--method", "\"method\""},
    };
    for (const auto& w : names)
        replace_all(diagnostics, w.library, terms == request_terms::flags ? w.flag : w.job_key);
    return diagnostics;
}

std::string fixed(double v, int decimals) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
    return buf;
}

bool signal_ignored(int sig) {
    struct sigaction old {};
    return ::sigaction(sig, nullptr, &old) == 0 && old.sa_handler == SIG_IGN;
}

}  // namespace fcgi_cli
