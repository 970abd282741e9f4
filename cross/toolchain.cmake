# Cross-compiling for a hub's architecture with Debian's cross compiler (crossbuild-essential-*)
# against a sysroot made by cross/make-sysroot.sh:
#   cmake -DCMAKE_TOOLCHAIN_FILE=cross/toolchain.cmake -DDINODIA_SYSROOT=/path/to/sysroot ...
# The sysroot names its own architecture (.dinodia-sysroot), so this file needs nothing else.
# Binaries that the build or CTest runs (Catch2's test discovery, the tests) run under qemu-user
# with the sysroot as their library root. docs/building.md explains the whole path.
if(NOT DINODIA_SYSROOT)
  set(DINODIA_SYSROOT "$ENV{DINODIA_SYSROOT}")
endif()
if(NOT DINODIA_SYSROOT OR NOT EXISTS "${DINODIA_SYSROOT}/.dinodia-sysroot")
  message(FATAL_ERROR "cross/toolchain.cmake needs -DDINODIA_SYSROOT=<a sysroot made by "
                      "cross/make-sysroot.sh>")
endif()
# try_compile() projects read this file again: hand them the sysroot through the environment.
set(ENV{DINODIA_SYSROOT} "${DINODIA_SYSROOT}")

file(STRINGS "${DINODIA_SYSROOT}/.dinodia-sysroot" sysroot_lines)
foreach(line IN LISTS sysroot_lines)
  if(line MATCHES "^(DEB_ARCH|TRIPLET|QEMU)=(.*)$")
    set(DINODIA_SYSROOT_${CMAKE_MATCH_1} "${CMAKE_MATCH_2}")
  endif()
endforeach()
set(triplet "${DINODIA_SYSROOT_TRIPLET}")
string(REGEX MATCH "^[^-]+" processor "${triplet}")

set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR "${processor}")
set(CMAKE_C_COMPILER "${triplet}-gcc")
set(CMAKE_CXX_COMPILER "${triplet}-g++")
set(CMAKE_SYSROOT "${DINODIA_SYSROOT}")
set(CMAKE_FIND_ROOT_PATH "${DINODIA_SYSROOT}")
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)  # host tools: lld, qemu, ccache
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
set(ENV{PKG_CONFIG_SYSROOT_DIR} "${DINODIA_SYSROOT}")
set(ENV{PKG_CONFIG_LIBDIR}
    "${DINODIA_SYSROOT}/usr/lib/${triplet}/pkgconfig:${DINODIA_SYSROOT}/usr/share/pkgconfig")
# GCC 7.1 changed how some arguments are passed on 32-bit ARM and says so at every use (-Wpsabi);
# everything here is built with the one compiler, so the note is noise.
if(processor STREQUAL "arm")
  set(CMAKE_CXX_FLAGS_INIT "-Wno-psabi")
endif()
set(CMAKE_CROSSCOMPILING_EMULATOR "${DINODIA_SYSROOT_QEMU};-L;${DINODIA_SYSROOT}")
