#include "response_output.hpp"

#include <unistd.h>

#include <asio/error.hpp>
#include <asio/io_context.hpp>
#include <cerrno>
#include <filesystem>
#include <utility>

#include "fcgi/error.hpp"
#include "fcgi/response.hpp"

namespace fcgi_cli {
namespace {

class response_output final : public fcgi::body_sink::implementation,
                              public std::enable_shared_from_this<response_output> {
  public:
    response_output(fcgi::body_sink target, bool to_file, bool include, bool fail,
                    std::shared_ptr<response_output_state> state)
        : target_(std::move(target)),
          to_file_(to_file),
          include_(include),
          fail_(fail),
          state_(std::move(state)) {}

    std::error_code start(std::string& why) override {
        // A file is opened (and truncated) only once a head it will hold has arrived, as curl
        // creates -o FILE on the first byte: a refused connection, a timeout or --fail's 404
        // leaves the last good copy in place.
        return to_file_ ? std::error_code() : open(why);
    }

    std::error_code on_head(const fcgi::response& head, std::string& why) override {
        state_->status = head.status;
        if (fail_ && head.status >= 400) {
            state_->refused_status = true;  // like curl -f: no body for an error status
            return {};
        }
        if (to_file_) {
            if (auto ec = open(why)) {
                state_->write_failed = true;
                return ec;
            }
        }
        if (include_)
            head_ = head_text(head);  // sent in front of the first chunk, or by finish()
        return {};
    }

    void async_write(std::string_view chunk, const asio::any_io_executor& ex,
                     fcgi::sink_write_handler done) override {
        if (state_->refused_status) {
            done({});
            return;
        }
        if (head_.empty()) {
            write_body(chunk, ex, std::move(done));
            return;
        }
        // The head goes through the target like a chunk, so it lands in the same file, and may
        // wait for room as a chunk does: head_ (and this sink) live until it is written.
        target_.get()->async_write(
            head_, ex,
            [self = shared_from_this(), chunk, ex, done = std::move(done)](std::error_code ec) {
                self->head_.clear();
                if (ec) {
                    self->failed(ec);
                    done(ec);
                    return;
                }
                self->write_body(chunk, ex, done);
            });
    }

    std::error_code finish(std::string& why) override {
        if (!head_.empty()) {
            // A response without a body: no async_write came to carry the head. finish() cannot
            // wait on the connection's executor, so the write waits on a private one, blocking
            // this one-request tool until stdout (a pipe, a terminal) has room; the response is
            // complete by then, so no deadline is held up.
            std::error_code ec;
            target_.get()->async_write(head_, head_io_.get_executor(),
                                       [&](std::error_code e) { ec = e; });
            head_io_.run();
            head_.clear();
            if (ec) {
                state_->write_failed = true;
                why = "cannot write the response head: " + ec.message();
                return ec;
            }
        }
        return opened_ ? target_.get()->finish(why) : std::error_code();
    }

    void cancel() noexcept override {
        cancelled_ = true;
        target_.get()->cancel();
    }

  private:
    void write_body(std::string_view chunk, const asio::any_io_executor& ex,
                    fcgi::sink_write_handler done) {
        target_.get()->async_write(chunk, ex,
                                   [self = shared_from_this(), done = std::move(done),
                                    began = std::chrono::steady_clock::now()](std::error_code ec) {
                                       self->state_->write_wait +=
                                           std::chrono::steady_clock::now() - began;
                                       if (ec)
                                           self->failed(ec);
                                       done(ec);
                                   });
    }

    // A write that ended because the request did (its deadline, a lost connection: cancel())
    // did not fail: the request's own error is the one to report.
    void failed(std::error_code ec) {
        if (!(cancelled_ && ec == asio::error::operation_aborted))
            state_->write_failed = true;
    }

    std::error_code open(std::string& why) {
        auto ec = target_.get()->start(why);
        opened_ = !ec;
        return ec;
    }

    // Declared before target_, so destroyed after it: a wait for room that finish() started on
    // it stays registered with it in the target.
    asio::io_context head_io_;
    fcgi::body_sink target_;
    std::string head_;  // with --include: the head, until it is written
    bool to_file_;
    bool opened_ = false;
    bool include_;
    bool fail_;
    bool cancelled_ = false;
    std::shared_ptr<response_output_state> state_;
};

}  // namespace

fcgi::body_sink make_response_output(const std::string& path, bool include, bool fail,
                                     std::shared_ptr<response_output_state> state) {
    auto target =
        path.empty() ? fcgi::body_sink::descriptor(STDOUT_FILENO) : fcgi::body_sink::file(path);
    return fcgi::body_sink(std::make_shared<response_output>(std::move(target), !path.empty(),
                                                             include, fail, std::move(state)));
}

bool output_path_usable(const std::string& path, std::string& why) {
    namespace fs = std::filesystem;
    auto refuse = [&](const std::string& reason) {
        why = "cannot write the response to " + path + ": " + reason;
        return false;
    };
    std::error_code ec;
    auto st = fs::status(path, ec);
    if (fs::exists(st)) {
        if (fs::is_directory(st))
            return refuse("it is a directory");
        if (::access(path.c_str(), W_OK) != 0)
            return refuse(std::generic_category().message(errno));
        return true;
    }
    fs::path dir = fs::path(path).parent_path();
    if (dir.empty())
        dir = ".";
    auto dst = fs::status(dir, ec);
    if (!fs::exists(dst))
        return refuse("no directory " + dir.string());
    if (!fs::is_directory(dst))
        return refuse(dir.string() + " is not a directory");
    if (::access(dir.c_str(), W_OK | X_OK) != 0)
        return refuse("cannot create a file in " + dir.string() + ": " +
                      std::generic_category().message(errno));
    return true;
}

std::string head_text(const fcgi::response& r) {
    std::string s = "Status: " + std::to_string(r.status);
    if (!r.reason.empty())
        s += " " + r.reason;
    s += "\r\n";
    for (const auto& h : r.headers)
        s += h.name + ": " + h.value + "\r\n";
    s += "\r\n";
    return s;
}

}  // namespace fcgi_cli
