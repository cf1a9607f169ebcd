// Advice the commands print after a run, when what failed points at a setting.
#pragma once

#include <cstdint>
#include <string>

namespace fcgi_cli {

/// The line bench and fanout print when `lost` requests failed with connection_lost and
/// --recycle-after was not given: php-fpm's pm.max_requests is the usual cause.
std::string recycle_hint(std::uint64_t lost);

}  // namespace fcgi_cli
