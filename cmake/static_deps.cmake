# Lean linking for a small resident daemon (issue 3: idle RSS <= 12 MiB).
#
# Every shared library costs resident pages at load (relocations, symbol tables, constructors)
# whether or not the daemon uses it. With DW_STATIC_DEPS (the default), the libraries below are
# linked from static archives, so only the code the worker actually runs is ever paged in:
#   curl     the minimal build from scripts/build-deps (.deps/curl-*), no GnuTLS/Kerberos/LDAP
#   OpenSSL  libssl.a + libcrypto.a (curl's TLS)
#   others   Debian's libarchive.a (+ libzstd.a, liblz4.a), libsqlite3.a, libsodium.a, libgpgme.a (+ libassuan.a,
#            libgpg-error.a); only the archive members the worker references are linked
#            (e.g. no xar reader, hence no libxml2/ICU)
# With -DDW_STATIC_DEPS=OFF everything comes from Debian's shared libraries (larger, slower).
#
# Defines the targets dw::curl dw::archive dw::sqlite dw::sodium dw::gpgme.

option(DW_STATIC_DEPS "Link curl, OpenSSL, libarchive, SQLite, libsodium and GPGME statically" ON)

find_package(PkgConfig REQUIRED)

if(NOT DW_STATIC_DEPS)
  find_package(CURL REQUIRED)
  pkg_check_modules(SODIUM REQUIRED IMPORTED_TARGET libsodium)
  pkg_check_modules(ARCHIVE REQUIRED IMPORTED_TARGET libarchive)
  pkg_check_modules(SQLITE REQUIRED IMPORTED_TARGET sqlite3)
  pkg_check_modules(GPGME REQUIRED IMPORTED_TARGET gpgme)
  add_library(dw::gpgme ALIAS PkgConfig::GPGME)
  add_library(dw::curl ALIAS CURL::libcurl)
  add_library(dw::sodium ALIAS PkgConfig::SODIUM)
  add_library(dw::archive ALIAS PkgConfig::ARCHIVE)
  add_library(dw::sqlite ALIAS PkgConfig::SQLITE)
  return()
endif()

# dw_static_archive(<target> <archive file name> [deps...]): an imported static library found in
# the system library directories, failing the configure step with a clear message if absent.
function(dw_static_archive target file)
  find_library(DW_${target}_A NAMES ${file} NO_CACHE)
  if(NOT DW_${target}_A)
    message(FATAL_ERROR "${file} not found: install the Debian -dev package (scripts/setup) "
                        "or configure with -DDW_STATIC_DEPS=OFF")
  endif()
  add_library(dw::${target} STATIC IMPORTED GLOBAL)
  set_target_properties(dw::${target} PROPERTIES IMPORTED_LOCATION ${DW_${target}_A}
                                                 INTERFACE_LINK_LIBRARIES "${ARGN}")
endfunction()

find_package(ZLIB REQUIRED)
find_package(BZip2 REQUIRED)
find_package(LibLZMA REQUIRED)
find_package(LibXml2 REQUIRED)
pkg_check_modules(DW_NETTLE REQUIRED IMPORTED_TARGET nettle)

dw_static_archive(crypto libcrypto.a ${CMAKE_DL_LIBS} Threads::Threads)
dw_static_archive(ssl libssl.a dw::crypto)
dw_static_archive(sodium libsodium.a Threads::Threads)
dw_static_archive(gpg_error libgpg-error.a Threads::Threads)
dw_static_archive(assuan libassuan.a dw::gpg_error)
dw_static_archive(gpgme libgpgme.a dw::assuan dw::gpg_error)
dw_static_archive(sqlite libsqlite3.a ${CMAKE_DL_LIBS} m Threads::Threads)
# zstd and lz4 decompress artifact images: static, so an idle worker maps none of them.
dw_static_archive(zstd libzstd.a Threads::Threads)
dw_static_archive(lz4 liblz4.a)
# libarchive's own dependencies stay shared; --as-needed drops those no linked member uses. The
# worker reads and writes tar only; the weak shim in src/tar_builder.cc keeps libarchive's writer
# format table (and with it xar, 7-Zip, zip: libxml2 + ICU, liblzma, libbz2, nettle) out of the
# binary. Test binaries that use that table load them.
dw_static_archive(archive libarchive.a PkgConfig::DW_NETTLE LibLZMA::LibLZMA
                  dw::zstd dw::lz4 BZip2::BZip2 ZLIB::ZLIB LibXml2::LibXml2)

# scripts/build-deps records the prefix of the build matching the installed Debian version.
set(DW_CURL_PREFIX "" CACHE PATH "Prefix of the static libcurl (default: from .deps/curl.current)")
set(found ${DW_CURL_PREFIX})
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/.deps/curl.current)
if(NOT found AND EXISTS ${CMAKE_SOURCE_DIR}/.deps/curl.current)
  file(STRINGS ${CMAKE_SOURCE_DIR}/.deps/curl.current found LIMIT_COUNT 1)
endif()
if(NOT found OR NOT EXISTS ${found}/lib/libcurl.a)
  message(FATAL_ERROR "the static libcurl is missing: run scripts/build-deps (scripts/setup "
                      "does), or configure with -DDW_STATIC_DEPS=OFF")
endif()
message(STATUS "static libcurl: ${found}")
add_library(dw::curl STATIC IMPORTED GLOBAL)
set_target_properties(dw::curl PROPERTIES
  IMPORTED_LOCATION ${found}/lib/libcurl.a
  INTERFACE_INCLUDE_DIRECTORIES ${found}/include
  INTERFACE_COMPILE_DEFINITIONS CURL_STATICLIB
  INTERFACE_LINK_LIBRARIES "dw::ssl;dw::crypto;ZLIB::ZLIB")
