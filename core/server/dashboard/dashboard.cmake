# The web dashboard (docs/dashboard.md), included from core/server/CMakeLists.txt.
#
# At build time `npm ci` installs the pinned packages (package-lock.json)
# into the build tree, esbuild bundles src/ into dist/, and embed.cmake turns
# dist/ into dashboard_files.c, compiled into obs_server, so hostd serves the
# page by itself. Nothing from npm is committed.
#
# OBS_DASHBOARD=AUTO (default): build it when node (>= 18) and npm are found;
#   when they are not, or npm/esbuild fail (offline, registry down), hostd
#   still builds and / serves a page that says how to enable the dashboard.
#   A failed attempt is retried by the next configure (cmake -S . -B build).
# OBS_DASHBOARD=ON: node/npm are required and any failure fails the build.
# OBS_DASHBOARD=OFF: never run npm; embed the how-to-enable page.
set(OBS_DASHBOARD AUTO CACHE STRING "Build the web dashboard with npm: AUTO, ON or OFF")
set_property(CACHE OBS_DASHBOARD PROPERTY STRINGS AUTO ON OFF)

set(_dash_src ${CMAKE_CURRENT_SOURCE_DIR}/dashboard)
set(_dash_bin ${CMAKE_CURRENT_BINARY_DIR}/dashboard)
set(_dash_c ${_dash_bin}/dashboard_files.c)
file(MAKE_DIRECTORY ${_dash_bin})

set(_dash_reason "")
if(OBS_DASHBOARD STREQUAL "OFF")
  set(_dash_reason "hostd was configured with -DOBS_DASHBOARD=OFF")
else()
  find_program(OBS_NODE_EXECUTABLE node)
  find_program(OBS_NPM_EXECUTABLE npm)
  if(NOT OBS_NODE_EXECUTABLE OR NOT OBS_NPM_EXECUTABLE)
    set(_dash_reason "node and npm were not found when hostd was configured")
  else()
    execute_process(COMMAND ${OBS_NODE_EXECUTABLE} --version OUTPUT_VARIABLE _node_v
                    OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE _node_rc)
    string(REGEX REPLACE "^v([0-9]+).*" "\\1" _node_major "${_node_v}")
    if(NOT _node_rc EQUAL 0 OR NOT _node_major MATCHES "^[0-9]+$" OR _node_major LESS 18)
      set(_dash_reason "node ${_node_v} is older than 18")
    endif()
  endif()
  if(_dash_reason AND OBS_DASHBOARD STREQUAL "ON")
    message(FATAL_ERROR "OBS_DASHBOARD=ON: ${_dash_reason} (apt-get install nodejs npm)")
  endif()
endif()
if(_dash_reason)
  message(STATUS "Dashboard: not built (${_dash_reason}); / will say how to enable it")
  set(_dash_node "")
  set(_dash_npm "")
else()
  message(STATUS "Dashboard: built with ${OBS_NODE_EXECUTABLE} ${_node_v} and ${OBS_NPM_EXECUTABLE}")
  set(_dash_node ${OBS_NODE_EXECUTABLE})
  set(_dash_npm ${OBS_NPM_EXECUTABLE})
endif()

# A previous build that fell back (npm failed) is retried after a configure.
if(EXISTS ${_dash_bin}/FAILED)
  file(REMOVE ${_dash_bin}/FAILED ${_dash_c})
endif()

file(GLOB_RECURSE _dash_inputs CONFIGURE_DEPENDS ${_dash_src}/src/* ${_dash_src}/fallback/*)
add_custom_command(
  OUTPUT ${_dash_c}
  COMMAND ${CMAKE_COMMAND} -DSRC=${_dash_src} -DBIN=${_dash_bin} -DOUT=${_dash_c}
          "-DNODE=${_dash_node}" "-DNPM=${_dash_npm}" -DMODE=${OBS_DASHBOARD}
          "-DREASON=${_dash_reason}" -P ${_dash_src}/build.cmake
  DEPENDS ${_dash_inputs} ${_dash_src}/package.json ${_dash_src}/package-lock.json
          ${_dash_src}/build.mjs ${_dash_src}/build.cmake ${_dash_src}/embed.cmake
  COMMENT "Dashboard: npm ci, esbuild, embed"
  VERBATIM)
add_custom_target(dashboard DEPENDS ${_dash_c})
target_sources(obs_server PRIVATE ${_dash_c})
add_dependencies(obs_server dashboard)
