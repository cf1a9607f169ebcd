#include "fcgi/detail/response_assembler.hpp"

#include <algorithm>

#include "fcgi/error.hpp"

namespace fcgi::detail {

void response_assembler::reset(const response_limits& limits) {
    limits_ = limits;
    head_.reset(limits.max_head);  // keeps the head buffer's capacity across requests
    response_ = response{};
    stdout_bytes_ = 0;
    stderr_bytes_ = 0;
}

std::error_code response_assembler::on_stdout(std::string_view bytes) {
    stdout_bytes_ += bytes.size();
    if (stdout_bytes_ > limits_.max_stdout)
        return error::response_too_large;
    if (!head_.done()) {
        auto r = head_.feed(bytes);
        if (r.ec)
            return r.ec;
        if (!r.done)
            return {};
        bytes.remove_prefix(r.consumed);
    }
    response_.body.append(bytes);
    return {};
}

response_assembler::streamed_piece response_assembler::on_stdout_streamed(std::string_view bytes) {
    stdout_bytes_ += bytes.size();
    streamed_piece out;
    if (!head_.done()) {
        auto r = head_.feed(bytes);
        if (r.ec || !r.done) {
            out.ec = r.ec;
            return out;
        }
        bytes.remove_prefix(r.consumed);
        out.head_complete = true;
    }
    out.body = bytes;
    return out;
}

response response_assembler::head() const {
    response r;
    r.status = head_.status();
    r.reason = head_.reason();
    r.headers = head_.headers();
    return r;
}

std::error_code response_assembler::on_stderr(std::string_view bytes) {
    stderr_bytes_ += bytes.size();
    auto room = limits_.max_stderr - std::min(limits_.max_stderr, response_.stderr_text.size());
    if (bytes.size() > room) {
        if (!limits_.truncate_stderr)
            return error::response_too_large;
        response_.stderr_dropped += bytes.size() - room;
        bytes = bytes.substr(0, room);
    }
    response_.stderr_text.append(bytes);
    return {};
}

std::error_code response_assembler::on_end(const protocol::end_request_body& end) {
    response_.app_status = end.app_status;
    response_.protocol_status = end.status;
    if (!head_.done()) {
        // A refusal (OVERLOADED, CANT_MPX_CONN, UNKNOWN_ROLE) before a whole head: no status,
        // as on any other failure, rather than the 200 a head-less success gets.
        if (end.status != protocol::protocol_status::request_complete)
            return {};
        if (auto r = head_.finish(); r.ec)
            return r.ec;
    }
    response_.status = head_.status();
    response_.reason = head_.reason();
    response_.headers = head_.take_headers();
    return {};
}

}  // namespace fcgi::detail
