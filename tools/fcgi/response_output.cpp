#include "response_output.hpp"

#include <unistd.h>

#include <utility>

#include "fcgi/error.hpp"
#include "fcgi/response.hpp"

namespace fcgi_cli {
namespace {

class response_output final : public fcgi::body_sink::implementation {
  public:
    response_output(fcgi::body_sink target, bool include, bool fail,
                    std::shared_ptr<response_output_state> state)
        : target_(std::move(target)), include_(include), fail_(fail), state_(std::move(state)) {}

    std::error_code start(std::string& why) override { return target_.get()->start(why); }

    std::error_code on_head(const fcgi::response& head, std::string& why) override {
        state_->status = head.status;
        if (fail_ && head.status >= 400) {
            state_->refused_status = true;  // like curl -f: no body for an error status
            return {};
        }
        if (!include_)
            return {};
        // The head goes through the target like a body chunk, so it lands in the same file;
        // both targets (a file, a descriptor) complete inline.
        std::error_code result;
        target_.get()->async_write(head_text(head), {}, [&](std::error_code ec) { result = ec; });
        if (result) {
            state_->write_failed = true;
            why = "cannot write the response head: " + result.message();
        }
        return result;
    }

    void async_write(std::string_view chunk, const asio::any_io_executor& ex,
                     fcgi::sink_write_handler done) override {
        if (state_->refused_status) {
            done({});
            return;
        }
        target_.get()->async_write(chunk, ex,
                                   [state = state_, done = std::move(done)](std::error_code ec) {
                                       if (ec)
                                           state->write_failed = true;
                                       done(ec);
                                   });
    }

    std::error_code finish(std::string& why) override { return target_.get()->finish(why); }

  private:
    fcgi::body_sink target_;
    bool include_;
    bool fail_;
    std::shared_ptr<response_output_state> state_;
};

}  // namespace

fcgi::body_sink make_response_output(const std::string& path, bool include, bool fail,
                                     std::shared_ptr<response_output_state> state) {
    auto target =
        path.empty() ? fcgi::body_sink::descriptor(STDOUT_FILENO) : fcgi::body_sink::file(path);
    return fcgi::body_sink(
        std::make_shared<response_output>(std::move(target), include, fail, std::move(state)));
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
