# Finds the Debian 12 packages Observatory builds against. A missing one stops
# the configure step with the name of the Debian package that provides it.
find_package(PkgConfig)
if(NOT PKG_CONFIG_FOUND)
  message(FATAL_ERROR "pkg-config not found: install the Debian package 'pkg-config' "
                      "(or run packaging/install-deps.sh)")
endif()
find_package(Threads REQUIRED)

# obs_require(<prefix> <pkg-config module> <debian package>)
function(obs_require prefix module debpkg)
  pkg_check_modules(${prefix} QUIET IMPORTED_TARGET GLOBAL ${module})
  if(NOT ${prefix}_FOUND)
    message(FATAL_ERROR "missing dependency '${module}': install the Debian package '${debpkg}' "
                        "(apt-get install ${debpkg}, or run packaging/install-deps.sh)")
  endif()
endfunction()

obs_require(CYAML libcyaml libcyaml-dev)
obs_require(YAML yaml-0.1 libyaml-dev)
obs_require(JANSSON jansson libjansson-dev)
obs_require(MSGPACK msgpack libmsgpack-dev)
obs_require(ROCKSDB rocksdb librocksdb-dev)
obs_require(MHD libmicrohttpd libmicrohttpd-dev)
obs_require(UNWIND libunwind libunwind-dev)
obs_require(PROFILER libprofiler libgoogle-perftools-dev)
obs_require(PROTOBUFC libprotobuf-c libprotobuf-c-dev)
obs_require(CURL libcurl libcurl4-openssl-dev)
obs_require(NATS libnats libnats-dev)
# libiberty (binutils' and GDB's C++ and Rust demangler, profiler/src/demangle.c)
# ships no pkg-config file: look for its header and static library.
find_path(OBS_LIBIBERTY_INCLUDE libiberty/demangle.h)
find_library(OBS_LIBIBERTY_LIB NAMES libiberty.a iberty)
if(NOT OBS_LIBIBERTY_INCLUDE OR NOT OBS_LIBIBERTY_LIB)
  message(FATAL_ERROR "missing dependency 'libiberty' (libiberty/demangle.h, libiberty.a): install the "
                      "Debian package 'libiberty-dev' (apt-get install libiberty-dev, or run "
                      "packaging/install-deps.sh)")
endif()
add_library(obs_libiberty STATIC IMPORTED GLOBAL)
set_target_properties(obs_libiberty PROPERTIES IMPORTED_LOCATION ${OBS_LIBIBERTY_LIB}
                      INTERFACE_INCLUDE_DIRECTORIES ${OBS_LIBIBERTY_INCLUDE})
if(OBS_BUILD_TESTS)
  obs_require(CMOCKA cmocka libcmocka-dev)
endif()
