// Advice the commands print after a run, when what failed points at a setting.
#pragma once

#include <cstdint>
#include <string>

namespace fcgi_cli {

/// The line bench and fanout print when `lost` requests failed with connection_lost: php-fpm's
/// pm.max_requests is the usual cause. Empty when there is nothing to advise: nothing lost,
/// --recycle-after already given (`recycle_after` > 0), or a connection carried several
/// requests at once (`multiplexed`), where a close loses them for other reasons.
std::string recycle_hint(std::uint64_t lost, std::uint64_t recycle_after, bool multiplexed);

}  // namespace fcgi_cli
