# obs_add_plugin(<name> SOURCES <files...> [LIBS <targets...>] [OUTPUT_DIR <dir>])
# Builds a stage plugin as <dir>/<name>.so (no "lib" prefix), with every
# symbol hidden except the OBS_EXPORT entry point.
function(obs_add_plugin name)
  cmake_parse_arguments(P "" "OUTPUT_DIR" "SOURCES;LIBS" ${ARGN})
  if(NOT P_OUTPUT_DIR)
    set(P_OUTPUT_DIR ${OBS_PLUGIN_DIR})
  endif()
  add_library(${name} MODULE ${P_SOURCES})
  set_target_properties(${name} PROPERTIES PREFIX "" C_VISIBILITY_PRESET hidden
                        LIBRARY_OUTPUT_DIRECTORY ${P_OUTPUT_DIR})
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/core/include)
  target_link_options(${name} PRIVATE -Wl,--build-id -Wl,-z,defs)
  target_link_libraries(${name} PRIVATE ${P_LIBS})
endfunction()
