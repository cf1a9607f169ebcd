# Wraps standalone Asio (Debian's libasio-dev, header-only) in the imported target asio::asio
# and sets AsioStandalone_FOUND. Never an error here: the project's build requires it, while the
# installed package config reports "not found" to a caller that asked QUIET.
if(TARGET asio::asio)
  set(AsioStandalone_FOUND TRUE)
  return()
endif()
find_path(FCGI_ASIO_INCLUDE_DIR asio.hpp DOC "Standalone Asio's include directory (asio.hpp)")
if(FCGI_ASIO_INCLUDE_DIR)
  add_library(asio::asio INTERFACE IMPORTED)
  set_target_properties(asio::asio PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${FCGI_ASIO_INCLUDE_DIR}"
    INTERFACE_COMPILE_DEFINITIONS "ASIO_STANDALONE")
  set(AsioStandalone_FOUND TRUE)
else()
  set(AsioStandalone_FOUND FALSE)
endif()
