// libFuzzer target: record_decoder::feed over any bytes, cut into pieces several ways.
//
// Invariants: each call consumes at most its input and makes progress (consumes, reports a
// piece or fails); a piece's content lies in the input or in the decoder's own buffer and never
// exceeds the header's length; an error is sticky; and the records and error that come out do
// not depend on how the bytes were split (TCP may cut them anywhere).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "fcgi/protocol/record_decoder.hpp"
#include "fuzz_check.hpp"

namespace {

using namespace fcgi::protocol;

void check(bool ok, const char* what) {
    fcgi::fuzz::check(ok, "record_decoder", what);
}

using fcgi::fuzz::within;

struct record {
    record_header header;
    std::string content;
    friend bool operator==(const record&, const record&) = default;
};

struct outcome {
    std::vector<record> records;
    std::error_code ec;
    bool at_boundary = false;
    friend bool operator==(const outcome&, const outcome&) = default;
};

class collector {
  public:
    // Feeds all of `chunk` (or up to the error).
    void feed(std::string_view chunk) {
        while (!chunk.empty() && !out_.ec) {
            decode_result r = decoder_.feed(chunk);
            check(r.consumed <= chunk.size(), "consumed <= input size");
            check(r.consumed > 0 || r.has_piece || r.ec, "progress on every call");
            if (r.has_piece)
                take(r.piece, chunk);
            if (r.ec) {
                check(!r.has_piece, "no piece with an error");
                check(decoder_.error() == r.ec, "error() reports the failure");
                out_.ec = r.ec;
                decode_result again = decoder_.feed(chunk.substr(r.consumed));
                check(again.ec == r.ec && again.consumed == 0 && !again.has_piece,
                      "errors are sticky");
            }
            chunk.remove_prefix(r.consumed);
        }
        check(decoder_.feed({}).consumed == 0, "empty input consumes nothing");
    }

    outcome finish() {
        out_.at_boundary = decoder_.at_record_boundary();
        check(!out_.at_boundary || partial_.empty(), "no partial record at a boundary");
        return out_;
    }

  private:
    void take(const record_piece& p, std::string_view chunk) {
        check(p.content.size() <= p.header.content_length, "piece within the record's length");
        check(p.header.version == version_1, "only version 1 comes out");
        if (is_stream(p.header.type)) {
            // Stream pieces are always views of the input: the decoder never buffers them.
            check(within(p.content, chunk), "stream content within the input");
            if (!in_stream_) {
                in_stream_ = true;
                partial_header_ = p.header;
            }
            check(p.header == partial_header_, "one header for all pieces of a record");
            partial_.append(p.content);
            if (p.end_of_record) {
                check(partial_.size() == p.header.content_length, "stream record complete");
                out_.records.push_back({p.header, partial_});
                partial_.clear();
                in_stream_ = false;
            }
            return;
        }
        check(!in_stream_, "no other record inside a stream record");
        check(p.end_of_record, "non-stream records come whole");
        check(p.content.size() == p.header.content_length, "whole record has all its content");
        out_.records.push_back({p.header, std::string(p.content)});
    }

    record_decoder decoder_;
    outcome out_;
    std::string partial_;
    record_header partial_header_;
    bool in_stream_ = false;
};

outcome run(std::string_view in, std::size_t step, std::size_t first_cut) {
    collector c;
    std::string_view rest = in;
    if (first_cut != 0 && first_cut < rest.size()) {
        // A copy of the first piece, so a view kept across calls into freed bytes shows up.
        std::string head(rest.substr(0, first_cut));
        c.feed(head);
        rest.remove_prefix(first_cut);
    }
    // The rest as views of the input: copying every small step would slow the fuzzer down.
    while (!rest.empty()) {
        std::size_t n = step == 0 ? rest.size() : std::min(step, rest.size());
        c.feed(rest.substr(0, n));
        rest.remove_prefix(n);
    }
    return c.finish();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    outcome whole = run(in, 0, 0);
    std::size_t cut = size == 0 ? 0 : data[0] % (size + 1);
    check(run(in, 0, cut) == whole, "same records when split in two");
    std::size_t step = size == 0 ? 1 : data[0] % 13 + 1;
    check(run(in, step, 0) == whole, "same records in small steps");
    if (size <= 4096)
        check(run(in, 1, 0) == whole, "same records byte by byte");

    // reset() forgets everything: the same bytes decode the same way again.
    record_decoder d;
    (void)d.feed(in);
    d.reset();
    check(d.at_record_boundary() && !d.error(), "reset() returns to a boundary");
    return 0;
}
