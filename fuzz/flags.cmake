# Included from the top-level CMakeLists.txt when DINODIA_FUZZ is ON, before the libraries are
# added, so everything the fuzz targets link carries coverage instrumentation and ASan + UBSan.
# Only a dedicated build dir (build-fuzz) turns this on; see fuzz/README.md.
if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  message(FATAL_ERROR "DINODIA_FUZZ needs clang (libFuzzer): configure with CC=clang CXX=clang++")
endif()
# fuzzer-no-link: coverage for libFuzzer without pulling its main() into every binary (the agent
# and other executables in this build dir still link). UBSan findings abort, so libFuzzer keeps
# the input that triggered them.
add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer
                    -fno-sanitize-recover=undefined)
add_link_options(-fsanitize=address,undefined)
