# Builds the dashboard bundle and embeds it (run by dashboard.cmake with
# cmake -P). Inputs: SRC (core/server/dashboard), BIN (its build dir), OUT (the C
# file to write), NODE and NPM (empty: not available), MODE (AUTO|ON|OFF),
# REASON (why it is not built, when NODE is empty).
#
# npm ci runs in BIN (a copy of package.json and package-lock.json), so the
# source tree stays clean and several build trees never share node_modules;
# it reruns only when the lock file changed. In AUTO mode a failure embeds
# the fallback page with the reason and leaves BIN/FAILED, so the next
# configure retries; in ON mode it fails the build.
cmake_minimum_required(VERSION 3.18)

set(dist ${BIN}/dist)
set(status ${BIN}/status)

function(dash_fallback why)
  file(REMOVE_RECURSE ${BIN}/fallback-dist)
  file(MAKE_DIRECTORY ${BIN}/fallback-dist)
  file(READ ${SRC}/fallback/index.html page)
  string(REPLACE "@REASON@" "${why}" page "${page}")
  file(WRITE ${BIN}/fallback-dist/index.html "${page}")
  file(WRITE ${status} "fallback\n${why}\n")
  execute_process(COMMAND ${CMAKE_COMMAND} -DDIR=${BIN}/fallback-dist -DOUT=${OUT} -DBUILT=0
                          -P ${SRC}/embed.cmake RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "dashboard: embedding the fallback page failed")
  endif()
endfunction()

function(dash_failed what hint log)
  if(MODE STREQUAL "ON")
    message(FATAL_ERROR "dashboard: ${what} failed (OBS_DASHBOARD=ON):\n${log}")
  endif()
  string(REGEX REPLACE "\n+$" "" log "${log}")
  string(LENGTH "${log}" n)
  if(n GREATER 1500)
    math(EXPR start "${n} - 1500")
    string(SUBSTRING "${log}" ${start} 1500 log)
  endif()
  message(WARNING "dashboard: ${what} failed; hostd will serve a page that says so.\n${log}")
  file(WRITE ${BIN}/FAILED "${what}\n")
  dash_fallback("${what} failed when hostd was built (${hint})")
endfunction()

if(NOT NODE OR NOT NPM)
  dash_fallback("${REASON}")
  return()
endif()

# 1. npm ci, when the lock file differs from the one last installed.
configure_file(${SRC}/package.json ${BIN}/package.json COPYONLY)
set(installed ${BIN}/node_modules/.observatory-lock.json)
set(need_ci TRUE)
if(EXISTS ${installed})
  file(SHA256 ${installed} a)
  file(SHA256 ${SRC}/package-lock.json b)
  if(a STREQUAL b)
    set(need_ci FALSE)
  endif()
endif()
if(need_ci)
  configure_file(${SRC}/package-lock.json ${BIN}/package-lock.json COPYONLY)
  # --prefer-offline: the npm cache answers when it can (rebuilds, other
  # build trees); --ignore-scripts: nothing from the registry runs here
  # (esbuild's binary comes as its @esbuild/<platform> package).
  execute_process(COMMAND ${NPM} ci --no-audit --no-fund --prefer-offline --ignore-scripts
                          --loglevel=error
                  WORKING_DIRECTORY ${BIN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    dash_failed("npm ci" "is the npm registry reachable?" "${out}")
    return()
  endif()
  configure_file(${SRC}/package-lock.json ${installed} COPYONLY)
endif()

# 2. esbuild: src/ -> dist/.
file(REMOVE_RECURSE ${dist})
execute_process(COMMAND ${NODE} ${SRC}/build.mjs ${SRC}/src ${dist} ${BIN}/node_modules
                WORKING_DIRECTORY ${BIN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(NOT rc EQUAL 0)
  dash_failed("the esbuild bundle" "see the build log" "${out}")
  return()
endif()

# 3. dist/ -> C.
execute_process(COMMAND ${CMAKE_COMMAND} -DDIR=${dist} -DOUT=${OUT} -DBUILT=1 -P ${SRC}/embed.cmake
                RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "dashboard: embedding ${dist} failed")
endif()
file(WRITE ${status} "built\n")
file(REMOVE ${BIN}/FAILED)
